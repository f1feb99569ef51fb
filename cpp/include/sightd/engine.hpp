// Inference through ONNX Runtime's C API. The library is the one shipped in the onnxruntime (or
// onnxruntime-gpu) wheel, loaded with dlopen() from a path the Python side finds; nothing links against it.
// Sessions come from a file or from bytes; runs are thread-safe and may overlap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sightd/tensor.hpp"

namespace sightd {

// Loads the ONNX Runtime library at `library_path` (once per process: a second call with the same file is a
// no-op, with another file an Error(kInvalidArgument)) and creates the process-wide environment. Throws
// Error(kEngine) when it cannot be loaded or lacks the C API version the core is compiled for (21: ONNX
// Runtime 1.21 or newer). Every other function of this header needs it done first (else Error(kEngine)).
void load_onnxruntime(const std::string& library_path);
bool onnxruntime_loaded() noexcept;
std::string onnxruntime_library_path();          // the file loaded; empty before
std::string onnxruntime_version();               // "1.32.0"
std::vector<std::string> available_providers();  // as ONNX Runtime lists them ("CPUExecutionProvider", ...)

// ONNX Runtime's own log messages (warning and above) are not printed: they wait in a bounded queue (the
// oldest are dropped beyond 1000) until taken, so that the Python side forwards them to `logging`.
struct LogRecord {
  int severity = 2;  // ONNX Runtime's levels: 2 warning, 3 error, 4 fatal
  std::string category;
  std::string message;
};
std::vector<LogRecord> take_onnxruntime_log();

struct TensorInfo {
  std::string name;
  ElementType type = ElementType::kUndefined;
  std::vector<int64_t> shape;           // -1 for a dynamic dimension
  std::vector<std::string> dim_names;   // symbolic names of dynamic dimensions ("" when none)
};

enum class GraphOptimization { kDisabled, kBasic, kExtended, kAll };

struct SessionOptions {
  int intra_op_threads = 0;  // 0: ONNX Runtime's default
  int inter_op_threads = 0;
  GraphOptimization optimization = GraphOptimization::kAll;
  std::string execution_provider = "auto";  // "auto": CUDA when usable, else CPU; "cpu"; "cuda"
  int device_id = 0;
  // ONNX Runtime's intra-op workers spin for a while after each operator, waiting for the next one (its
  // default). false puts them to sleep at once: slightly slower runs, but no cores burnt while the threads
  // that decode and preprocess work between runs (see docs/engine.md).
  bool allow_spinning = true;
};

class Session {
 public:
  static std::shared_ptr<Session> from_path(const std::string& path, const SessionOptions& options);
  static std::shared_ptr<Session> from_bytes(const void* data, std::size_t size, const SessionOptions& options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const std::vector<TensorInfo>& inputs() const noexcept;
  const std::vector<TensorInfo>& outputs() const noexcept;
  const TensorInfo* find_input(const std::string& name) const noexcept;
  const TensorInfo* find_output(const std::string& name) const noexcept;
  // "CUDAExecutionProvider" or "CPUExecutionProvider": what the session actually runs on.
  const std::string& provider() const noexcept;
  // Why CUDA was asked for (or "auto") but not used; empty otherwise.
  const std::string& fallback_reason() const noexcept;

  // Runs the graph. Feeds are named; outputs are returned in the order of `output_names` (all outputs when
  // empty). Thread-safe; the caller's input memory is read, never copied.
  std::vector<Tensor> run(const std::vector<std::pair<std::string, Tensor>>& feeds,
                          const std::vector<std::string>& output_names) const;

  struct Impl;  // opaque (cpp/src/engine_session.hpp): keeps ONNX Runtime out of the public headers

 private:
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sightd
