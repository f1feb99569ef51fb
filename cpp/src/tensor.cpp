#include "sightd/tensor.hpp"

#include <cmath>
#include <cstring>
#include <sstream>

#include "sightd/error.hpp"

namespace sightd {

std::size_t element_size(ElementType type) noexcept {
  switch (type) {
    case ElementType::kFloat32:
    case ElementType::kInt32:
    case ElementType::kUint32:
      return 4;
    case ElementType::kUint8:
    case ElementType::kInt8:
    case ElementType::kBool:
      return 1;
    case ElementType::kUint16:
    case ElementType::kInt16:
    case ElementType::kFloat16:
      return 2;
    case ElementType::kInt64:
    case ElementType::kFloat64:
    case ElementType::kUint64:
      return 8;
    case ElementType::kUndefined:
    case ElementType::kString:
      return 0;
  }
  return 0;
}

const char* element_type_name(ElementType type) noexcept {
  switch (type) {
    case ElementType::kFloat32: return "float32";
    case ElementType::kUint8: return "uint8";
    case ElementType::kInt8: return "int8";
    case ElementType::kUint16: return "uint16";
    case ElementType::kInt16: return "int16";
    case ElementType::kInt32: return "int32";
    case ElementType::kInt64: return "int64";
    case ElementType::kString: return "string";
    case ElementType::kBool: return "bool";
    case ElementType::kFloat16: return "float16";
    case ElementType::kFloat64: return "float64";
    case ElementType::kUint32: return "uint32";
    case ElementType::kUint64: return "uint64";
    case ElementType::kUndefined: return "undefined";
  }
  return "undefined";
}

std::size_t Tensor::element_count() const noexcept {
  std::size_t count = 1;
  for (int64_t d : shape) count *= d > 0 ? static_cast<std::size_t>(d) : 0;
  return count;
}

Tensor Tensor::zeros(ElementType type, std::vector<int64_t> shape) {
  Tensor t;
  t.type = type;
  t.shape = std::move(shape);
  auto storage = std::make_shared<std::vector<unsigned char>>(t.byte_size());
  t.data = storage->data();
  t.owner = std::move(storage);
  return t;
}

Tensor Tensor::slice(int64_t index, bool keep_dim) const {
  if (shape.empty() || index < 0 || index >= shape[0]) {
    throw Error(ErrorCode::kInternal, "tensor slice " + std::to_string(index) + " out of range for shape " +
                                          shape_to_string(shape));
  }
  Tensor row;
  row.type = type;
  row.owner = owner;
  if (keep_dim) {
    row.shape = shape;
    row.shape[0] = 1;
  } else {
    row.shape.assign(shape.begin() + 1, shape.end());
  }
  std::size_t row_bytes = shape[0] > 0 ? byte_size() / static_cast<std::size_t>(shape[0]) : 0;
  row.data = static_cast<unsigned char*>(data) + row_bytes * static_cast<std::size_t>(index);
  return row;
}

namespace {
double half_to_double(uint16_t h) {
  const int sign = (h >> 15) & 1;
  const int exponent = (h >> 10) & 0x1f;
  const int mantissa = h & 0x3ff;
  double value;
  if (exponent == 0) {
    value = std::ldexp(static_cast<double>(mantissa), -24);
  } else if (exponent == 31) {
    value = mantissa == 0 ? HUGE_VAL : std::nan("");
  } else {
    value = std::ldexp(static_cast<double>(mantissa + 1024), exponent - 25);
  }
  return sign ? -value : value;
}
}  // namespace

double Tensor::value_as_double(std::size_t i) const {
  switch (type) {
    case ElementType::kFloat32: return static_cast<double>(as<float>()[i]);
    case ElementType::kFloat64: return as<double>()[i];
    case ElementType::kUint8: return as<uint8_t>()[i];
    case ElementType::kInt8: return as<int8_t>()[i];
    case ElementType::kUint16: return as<uint16_t>()[i];
    case ElementType::kInt16: return as<int16_t>()[i];
    case ElementType::kInt32: return as<int32_t>()[i];
    case ElementType::kUint32: return as<uint32_t>()[i];
    case ElementType::kInt64: return static_cast<double>(as<int64_t>()[i]);
    case ElementType::kUint64: return static_cast<double>(as<uint64_t>()[i]);
    case ElementType::kBool: return as<uint8_t>()[i] ? 1.0 : 0.0;
    case ElementType::kFloat16: return half_to_double(as<uint16_t>()[i]);
    case ElementType::kUndefined:
    case ElementType::kString:
      break;
  }
  throw Error(ErrorCode::kInvalidArgument, std::string("tensor of element type ") + element_type_name(type) +
                                               " has no numeric value");
}

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

}  // namespace sightd
