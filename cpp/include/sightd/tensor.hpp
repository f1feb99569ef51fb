// A dense tensor: element type, shape and a pointer into memory that `owner` keeps alive (a std::vector,
// an Ort::Value, a NumPy array held by the binding...). Copying a Tensor shares the memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sightd {

// Values are ONNX's TensorProto.DataType numbers, which ONNX Runtime's ONNXTensorElementDataType shares.
enum class ElementType : int {
  kUndefined = 0,
  kFloat32 = 1,
  kUint8 = 2,
  kInt8 = 3,
  kUint16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,
  kBool = 9,
  kFloat16 = 10,
  kFloat64 = 11,
  kUint32 = 12,
  kUint64 = 13,
};

// Size in bytes of one element; 0 for kUndefined and kString.
std::size_t element_size(ElementType type) noexcept;
// "float32", "uint8", ... as NumPy spells them.
const char* element_type_name(ElementType type) noexcept;

struct Tensor {
  ElementType type = ElementType::kUndefined;
  std::vector<int64_t> shape;
  void* data = nullptr;
  std::shared_ptr<void> owner;

  std::size_t element_count() const noexcept;
  std::size_t byte_size() const noexcept { return element_count() * element_size(type); }

  template <typename T>
  T* as() noexcept { return static_cast<T*>(data); }
  template <typename T>
  const T* as() const noexcept { return static_cast<const T*>(data); }

  // A zero-filled tensor owning its memory.
  static Tensor zeros(ElementType type, std::vector<int64_t> shape);
  // A view of row `index` along the first dimension; shares the memory (shape loses its first dimension
  // only if `keep_dim` is false).
  Tensor slice(int64_t index, bool keep_dim) const;
  // Element i converted to double (any numeric type; float16 included).
  double value_as_double(std::size_t i) const;
};

std::string shape_to_string(const std::vector<int64_t>& shape);

}  // namespace sightd
