#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common.hpp"
#include "sightd/error.hpp"

namespace sightd::bindings {

namespace {

py::dtype numpy_dtype(ElementType type) {
  switch (type) {
    case ElementType::kFloat32: return py::dtype("float32");
    case ElementType::kUint8: return py::dtype("uint8");
    case ElementType::kInt8: return py::dtype("int8");
    case ElementType::kUint16: return py::dtype("uint16");
    case ElementType::kInt16: return py::dtype("int16");
    case ElementType::kInt32: return py::dtype("int32");
    case ElementType::kInt64: return py::dtype("int64");
    case ElementType::kBool: return py::dtype("bool");
    case ElementType::kFloat16: return py::dtype("float16");
    case ElementType::kFloat64: return py::dtype("float64");
    case ElementType::kUint32: return py::dtype("uint32");
    case ElementType::kUint64: return py::dtype("uint64");
    case ElementType::kUndefined:
    case ElementType::kString:
      break;
  }
  throw Error(ErrorCode::kInvalidArgument, std::string("tensors of element type ") + element_type_name(type) +
                                               " cannot be returned to Python");
}

}  // namespace

ElementType element_type_of(const py::dtype& dtype) {
  static const std::pair<const char*, ElementType> kTypes[] = {
      {"float32", ElementType::kFloat32}, {"uint8", ElementType::kUint8},   {"int8", ElementType::kInt8},
      {"uint16", ElementType::kUint16},   {"int16", ElementType::kInt16},   {"int32", ElementType::kInt32},
      {"int64", ElementType::kInt64},     {"bool", ElementType::kBool},     {"float16", ElementType::kFloat16},
      {"float64", ElementType::kFloat64}, {"uint32", ElementType::kUint32}, {"uint64", ElementType::kUint64},
  };
  for (const auto& [name, type] : kTypes) {
    if (dtype.is(py::dtype(name))) return type;
  }
  return ElementType::kUndefined;
}

py::array tensor_to_numpy(const Tensor& tensor) {
  py::dtype dtype = numpy_dtype(tensor.type);
  std::vector<py::ssize_t> shape(tensor.shape.begin(), tensor.shape.end());
  auto* keep_alive = new std::shared_ptr<void>(tensor.owner);
  py::capsule base(keep_alive, [](void* p) { delete static_cast<std::shared_ptr<void>*>(p); });
  return py::array(dtype, shape, {}, tensor.data, base);
}

Tensor numpy_to_tensor(const py::array& array, const std::string& field) {
  ElementType type = element_type_of(array.dtype());
  if (type == ElementType::kUndefined) {
    throw_invalid_argument(field, "unsupported array dtype " + py::str(array.dtype()).cast<std::string>());
  }
  if (!(array.flags() & py::array::c_style)) {
    throw_invalid_argument(field, "array must be C-contiguous");
  }
  Tensor tensor;
  tensor.type = type;
  tensor.shape.assign(array.shape(), array.shape() + array.ndim());
  tensor.data = const_cast<void*>(array.data());
  // The tensor may outlive the GIL scope it was made in: release the reference under the GIL.
  auto* held = new py::object(array);
  tensor.owner = std::shared_ptr<void>(held, [](void* p) {
    py::gil_scoped_acquire gil;
    delete static_cast<py::object*>(p);
  });
  return tensor;
}

}  // namespace sightd::bindings
