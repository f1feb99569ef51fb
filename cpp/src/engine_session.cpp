// Creating sessions: options, the CUDA execution provider with its fallback to CPU, and introspection.
#include "engine_session.hpp"

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine_internal.hpp"
#include "sightd/error.hpp"

namespace sightd {

namespace {

constexpr const char* kCpu = "CPUExecutionProvider";
constexpr const char* kCuda = "CUDAExecutionProvider";
constexpr int kMaxThreads = 1024;

void check_options(const SessionOptions& options) {
  if (options.intra_op_threads < 0 || options.intra_op_threads > kMaxThreads) {
    throw_invalid_argument("intra_op_threads", "must be in 0.." + std::to_string(kMaxThreads) + " (0: default)");
  }
  if (options.inter_op_threads < 0 || options.inter_op_threads > kMaxThreads) {
    throw_invalid_argument("inter_op_threads", "must be in 0.." + std::to_string(kMaxThreads) + " (0: default)");
  }
  if (options.execution_provider != "auto" && options.execution_provider != "cpu" &&
      options.execution_provider != "cuda") {
    throw_invalid_argument("execution_provider",
                           "must be auto, cpu or cuda, not '" + options.execution_provider + "'");
  }
  if (options.device_id < 0) throw_invalid_argument("device_id", "must be 0 or more");
}

GraphOptimizationLevel ort_level(GraphOptimization level) {
  switch (level) {
    case GraphOptimization::kDisabled: return ORT_DISABLE_ALL;
    case GraphOptimization::kBasic: return ORT_ENABLE_BASIC;
    case GraphOptimization::kExtended: return ORT_ENABLE_EXTENDED;
    case GraphOptimization::kAll: break;
  }
  return ORT_ENABLE_ALL;
}

Ort::SessionOptions cpu_session_options(const SessionOptions& options) {
  Ort::SessionOptions ort;
  if (options.intra_op_threads > 0) ort.SetIntraOpNumThreads(options.intra_op_threads);
  if (options.inter_op_threads > 0) ort.SetInterOpNumThreads(options.inter_op_threads);
  // Inter-op threads only run independent branches of the graph in parallel execution mode: asking for more
  // than one means asking for that mode.
  if (options.inter_op_threads > 1) ort.SetExecutionMode(ORT_PARALLEL);
  const char* spinning = options.allow_spinning ? "1" : "0";
  ort.AddConfigEntry("session.intra_op.allow_spinning", spinning);
  ort.AddConfigEntry("session.inter_op.allow_spinning", spinning);
  ort.SetGraphOptimizationLevel(ort_level(options.optimization));
  return ort;
}

void append_cuda(Ort::SessionOptions& ort, int device_id) {
  const OrtApi& api = Ort::GetApi();
  OrtCUDAProviderOptionsV2* raw = nullptr;
  Ort::ThrowOnError(api.CreateCUDAProviderOptions(&raw));
  std::unique_ptr<OrtCUDAProviderOptionsV2, void (*)(OrtCUDAProviderOptionsV2*)> cuda(
      raw, api.ReleaseCUDAProviderOptions);
  const std::string device = std::to_string(device_id);
  const char* keys[] = {"device_id"};
  const char* values[] = {device.c_str()};
  Ort::ThrowOnError(api.UpdateCUDAProviderOptions(cuda.get(), keys, values, 1));
  ort.AppendExecutionProvider_CUDA_V2(*cuda);
}

bool has_provider(const std::vector<std::string>& providers, const char* name) {
  for (const auto& provider : providers) {
    if (provider == name) return true;
  }
  return false;
}

TensorInfo describe(const std::string& name, const Ort::TypeInfo& type_info) {
  TensorInfo info;
  info.name = name;
  if (type_info.GetONNXType() != ONNX_TYPE_TENSOR) return info;  // a sequence, map...: kUndefined, no shape
  auto tensor = type_info.GetTensorTypeAndShapeInfo();
  info.type = detail::to_element_type(tensor.GetElementType());
  info.shape = tensor.GetShape();
  std::vector<const char*> symbols(info.shape.size(), nullptr);
  if (!symbols.empty()) tensor.GetSymbolicDimensions(symbols.data(), symbols.size());
  for (std::size_t d = 0; d < info.shape.size(); ++d) {
    if (info.shape[d] < 0) info.shape[d] = -1;
    info.dim_names.emplace_back(info.shape[d] < 0 && symbols[d] ? symbols[d] : "");
  }
  return info;
}

void introspect(Session::Impl& impl) {
  Ort::AllocatorWithDefaultOptions allocator;
  Ort::Session& session = impl.session;
  for (std::size_t i = 0; i < session.GetInputCount(); ++i) {
    impl.inputs.push_back(describe(session.GetInputNameAllocated(i, allocator).get(), session.GetInputTypeInfo(i)));
  }
  for (std::size_t i = 0; i < session.GetOutputCount(); ++i) {
    impl.outputs.push_back(
        describe(session.GetOutputNameAllocated(i, allocator).get(), session.GetOutputTypeInfo(i)));
    const TensorInfo& output = impl.outputs.back();
    if (output.type != ElementType::kUndefined && output.type != ElementType::kString) {
      impl.tensor_outputs.push_back(output.name);
    }
  }
}

// Creates the ONNX Runtime session, on CUDA when asked for (or "auto") and possible, else on CPU; `create`
// builds it from the path or the bytes.
std::unique_ptr<Session::Impl> create(const SessionOptions& options,
                                      const std::function<Ort::Session(const Ort::SessionOptions&)>& create) {
  check_options(options);
  detail::ort_env();
  auto impl = std::make_unique<Session::Impl>();
  try {
    const bool want_cuda = options.execution_provider != "cpu";
    bool created = false;
    if (want_cuda) {
      const bool listed = has_provider(Ort::GetAvailableProviders(), kCuda);
      // "auto" only tries CUDA in a GPU build; an explicit "cuda" always tries, so that the reason for not
      // getting it is ONNX Runtime's own.
      if (listed || options.execution_provider == "cuda") {
        try {
          Ort::SessionOptions ort = cpu_session_options(options);
          append_cuda(ort, options.device_id);
          impl->session = create(ort);
          impl->provider = kCuda;
          created = true;
        } catch (const Ort::Exception& error) {
          impl->fallback_reason = std::string("CUDAExecutionProvider could not be used") +
                                  (listed ? "" : " (this ONNX Runtime build does not list it: install "
                                                 "onnxruntime-gpu instead of onnxruntime)") +
                                  ": " + error.what();
        }
      }
    }
    if (!created) {
      impl->session = create(cpu_session_options(options));
      impl->provider = kCpu;
    }
    impl->cpu_memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    introspect(*impl);
  } catch (const Ort::Exception& error) {
    detail::throw_engine("cannot load the model", error);
  }
  return impl;
}

}  // namespace

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

std::shared_ptr<Session> Session::from_path(const std::string& path, const SessionOptions& options) {
  auto impl = create(options, [&](const Ort::SessionOptions& ort) {
    return Ort::Session(detail::ort_env(), path.c_str(), ort);
  });
  return std::shared_ptr<Session>(new Session(std::move(impl)));
}

std::shared_ptr<Session> Session::from_bytes(const void* data, std::size_t size, const SessionOptions& options) {
  if (data == nullptr || size == 0) throw_invalid_argument("model", "the model is empty");
  auto impl = create(options, [&](const Ort::SessionOptions& ort) {
    return Ort::Session(detail::ort_env(), data, size, ort);
  });
  return std::shared_ptr<Session>(new Session(std::move(impl)));
}

const std::vector<TensorInfo>& Session::inputs() const noexcept { return impl_->inputs; }
const std::vector<TensorInfo>& Session::outputs() const noexcept { return impl_->outputs; }

const TensorInfo* Session::find_input(const std::string& name) const noexcept {
  for (const auto& info : impl_->inputs) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

const TensorInfo* Session::find_output(const std::string& name) const noexcept {
  for (const auto& info : impl_->outputs) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

const std::string& Session::provider() const noexcept { return impl_->provider; }
const std::string& Session::fallback_reason() const noexcept { return impl_->fallback_reason; }

}  // namespace sightd
