// What the engine's source files share: access to the dlopen()ed ONNX Runtime and its process-wide
// environment, and the conversion of ONNX Runtime's errors and types into the core's. Not a public header:
// nothing outside cpp/src/engine*.cpp and pipeline*.cpp sees ONNX Runtime.
#pragma once

#include <onnxruntime_cxx_api.h>

#include <string>

#include "sightd/error.hpp"
#include "sightd/tensor.hpp"

namespace sightd::detail {

// The process-wide environment. Throws Error(kEngine) when load_onnxruntime() has not succeeded yet.
Ort::Env& ort_env();

// ONNX Runtime's element types share ONNX's TensorProto numbers, which ElementType also uses; types the core
// does not know (bfloat16, complex, float8...) become kUndefined.
inline ElementType to_element_type(ONNXTensorElementDataType type) noexcept {
  const int value = static_cast<int>(type);
  return value >= 1 && value <= static_cast<int>(ElementType::kUint64) ? static_cast<ElementType>(value)
                                                                        : ElementType::kUndefined;
}

inline ONNXTensorElementDataType to_onnx_type(ElementType type) noexcept {
  return static_cast<ONNXTensorElementDataType>(static_cast<int>(type));
}

// How ONNX spells a tensor type in its documents and error messages: "tensor(float)".
std::string onnx_type_name(ElementType type);

[[noreturn]] inline void throw_engine(const std::string& context, const Ort::Exception& error) {
  throw Error(ErrorCode::kEngine, context.empty() ? std::string(error.what()) : context + ": " + error.what());
}

}  // namespace sightd::detail
