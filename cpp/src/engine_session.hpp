// The private state of a sightd::Session, shared by engine_session.cpp (creation, introspection) and
// engine_run.cpp (feed checks, runs).
#pragma once

#include <onnxruntime_cxx_api.h>

#include <string>
#include <vector>

#include "sightd/engine.hpp"

namespace sightd {

struct Session::Impl {
  // Ort::Session::Run is thread-safe, but the C++ wrapper declares it non-const.
  mutable Ort::Session session{nullptr};
  std::vector<TensorInfo> inputs;
  std::vector<TensorInfo> outputs;
  std::vector<std::string> tensor_outputs;  // outputs a run returns when none are named: tensors only
  std::string provider;
  std::string fallback_reason;
  Ort::MemoryInfo cpu_memory{nullptr};
};

}  // namespace sightd
