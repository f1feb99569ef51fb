// Loading ONNX Runtime from the wheel's library file and the one process-wide Ort::Env.
//
// The wheel's library cannot be linked against (its soname file is missing from the wheel and its symbols are
// versioned per release), so it is dlopen()ed and the C++ wrapper is pointed at its API table
// (ORT_API_MANUAL_INIT + Ort::InitApi). The library and the environment are never unloaded: sessions and
// output tensors held by Python objects may outlive any static destructor at interpreter exit.
#include <dlfcn.h>

#include <climits>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "engine_internal.hpp"
#include "sightd/engine.hpp"
#include "sightd/error.hpp"

namespace sightd {

namespace {

constexpr std::size_t kMaxLogRecords = 1000;

struct Runtime {
  std::mutex mutex;  // guards loading; the fields below are written once, under it, then only read
  std::string library_path;
  std::string version;
  Ort::Env* env = nullptr;  // leaked on purpose (see the file comment)

  std::mutex log_mutex;
  std::deque<LogRecord> log;
  std::size_t dropped = 0;
};

Runtime& runtime() {
  static Runtime* instance = new Runtime();  // leaked: ONNX Runtime may log from its threads at exit
  return *instance;
}

void ORT_API_CALL log_to_queue(void* /*param*/, OrtLoggingLevel severity, const char* category,
                               const char* /*logid*/, const char* /*code_location*/, const char* message) {
  Runtime& rt = runtime();
  std::lock_guard<std::mutex> lock(rt.log_mutex);
  if (rt.log.size() == kMaxLogRecords) {
    rt.log.pop_front();
    ++rt.dropped;
  }
  rt.log.push_back(LogRecord{static_cast<int>(severity), category ? category : "", message ? message : ""});
}

std::string real_path(const std::string& path) {
  char buffer[PATH_MAX];
  return ::realpath(path.c_str(), buffer) ? std::string(buffer) : path;
}

}  // namespace

namespace detail {

Ort::Env& ort_env() {
  Runtime& rt = runtime();
  std::lock_guard<std::mutex> lock(rt.mutex);
  if (rt.env == nullptr) {
    throw Error(ErrorCode::kEngine,
                "ONNX Runtime is not loaded: call sightd._core.load_onnxruntime(path) first (sightd.engine does)");
  }
  return *rt.env;
}

std::string onnx_type_name(ElementType type) {
  switch (type) {
    case ElementType::kFloat32: return "tensor(float)";
    case ElementType::kFloat64: return "tensor(double)";
    case ElementType::kFloat16: return "tensor(float16)";
    case ElementType::kUndefined: return "a type the core does not handle";
    default: return std::string("tensor(") + element_type_name(type) + ")";
  }
}

}  // namespace detail

void load_onnxruntime(const std::string& library_path) {
  Runtime& rt = runtime();
  std::lock_guard<std::mutex> lock(rt.mutex);
  const std::string resolved = real_path(library_path);
  if (rt.env != nullptr) {
    if (resolved == rt.library_path) return;
    throw Error(ErrorCode::kInvalidArgument, "library_path",
                "ONNX Runtime is already loaded from " + rt.library_path + "; one process uses one library");
  }
  // RTLD_LOCAL: the Python onnxruntime package, if imported too, keeps its own symbols.
  void* handle = ::dlopen(resolved.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* reason = ::dlerror();
    throw Error(ErrorCode::kEngine, "cannot load ONNX Runtime from " + library_path + ": " +
                                        (reason ? reason : "unknown dlopen error"));
  }
  using GetApiBase = const OrtApiBase*(ORT_API_CALL*)();
  auto get_api_base = reinterpret_cast<GetApiBase>(::dlsym(handle, "OrtGetApiBase"));
  const OrtApiBase* api_base = get_api_base ? get_api_base() : nullptr;
  if (api_base == nullptr) {
    ::dlclose(handle);
    throw Error(ErrorCode::kEngine, library_path + " is not an ONNX Runtime library (no OrtGetApiBase)");
  }
  const std::string version = api_base->GetVersionString();
  const OrtApi* api = api_base->GetApi(ORT_API_VERSION);
  if (api == nullptr) {
    ::dlclose(handle);
    throw Error(ErrorCode::kEngine, "ONNX Runtime " + version + " at " + library_path + " lacks C API version " +
                                        std::to_string(ORT_API_VERSION) + ": install onnxruntime 1." +
                                        std::to_string(ORT_API_VERSION) + " or newer");
  }
  Ort::InitApi(api);
  try {
    rt.env = new Ort::Env(ORT_LOGGING_LEVEL_WARNING, "sightd", log_to_queue, nullptr);
  } catch (const Ort::Exception& error) {
    detail::throw_engine("cannot create the ONNX Runtime environment", error);
  }
  rt.library_path = resolved;
  rt.version = version;
}

bool onnxruntime_loaded() noexcept {
  Runtime& rt = runtime();
  std::lock_guard<std::mutex> lock(rt.mutex);
  return rt.env != nullptr;
}

std::string onnxruntime_library_path() {
  Runtime& rt = runtime();
  std::lock_guard<std::mutex> lock(rt.mutex);
  return rt.library_path;
}

std::string onnxruntime_version() {
  detail::ort_env();
  Runtime& rt = runtime();
  std::lock_guard<std::mutex> lock(rt.mutex);
  return rt.version;
}

std::vector<std::string> available_providers() {
  detail::ort_env();
  try {
    return Ort::GetAvailableProviders();
  } catch (const Ort::Exception& error) {
    detail::throw_engine("cannot list the execution providers", error);
  }
}

std::vector<LogRecord> take_onnxruntime_log() {
  Runtime& rt = runtime();
  std::lock_guard<std::mutex> lock(rt.log_mutex);
  std::vector<LogRecord> records;
  records.reserve(rt.log.size() + 1);
  if (rt.dropped > 0) {
    records.push_back(LogRecord{ORT_LOGGING_LEVEL_WARNING, "sightd",
                                std::to_string(rt.dropped) + " older ONNX Runtime messages were dropped"});
    rt.dropped = 0;
  }
  for (auto& record : rt.log) records.push_back(std::move(record));
  rt.log.clear();
  return records;
}

}  // namespace sightd
