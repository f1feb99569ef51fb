// sightd._core: the compiled core's Python module. Errors of the core become the exception classes of
// sightd.errors (with the offending field); each part of the core registers itself from its own file.
#include <pybind11/pybind11.h>

#include "common.hpp"
#include "sightd/error.hpp"
#include "sightd/transform.hpp"

namespace py = pybind11;

namespace {

const char* exception_class_name(sightd::ErrorCode code) {
  switch (code) {
    case sightd::ErrorCode::kInvalidArgument: return "InvalidArgumentError";
    case sightd::ErrorCode::kInvalidImage: return "ImageError";
    case sightd::ErrorCode::kImageTooLarge: return "ImageTooLargeError";
    case sightd::ErrorCode::kEngine: return "EngineError";
    case sightd::ErrorCode::kInternal: return "CoreError";
  }
  return "CoreError";
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "sightd's compiled core: decoding, preprocessing, ONNX Runtime inference, post-processing";

  py::enum_<sightd::ErrorCode>(m, "ErrorCode")
      .value("INVALID_ARGUMENT", sightd::ErrorCode::kInvalidArgument)
      .value("INVALID_IMAGE", sightd::ErrorCode::kInvalidImage)
      .value("IMAGE_TOO_LARGE", sightd::ErrorCode::kImageTooLarge)
      .value("ENGINE", sightd::ErrorCode::kEngine)
      .value("INTERNAL", sightd::ErrorCode::kInternal);

  // Translate sightd::Error into sightd.errors.<Class>(message, field=...). The module is imported lazily,
  // at the first error, so that importing _core never depends on import order.
  py::register_exception_translator([](std::exception_ptr pointer) {
    try {
      if (pointer) std::rethrow_exception(pointer);
    } catch (const sightd::Error& error) {
      py::object errors = py::module_::import("sightd.errors");
      py::object cls = errors.attr(exception_class_name(error.code()));
      py::object instance = cls(py::str(error.what()), py::arg("field") = py::str(error.field()));
      PyErr_SetObject(cls.ptr(), instance.ptr());
    }
  });

  // Shared by every part: the geometry an image went through on its way into a tensor.
  py::class_<sightd::Transform>(m, "Transform")
      .def(py::init<>())
      .def_readwrite("image_width", &sightd::Transform::image_width)
      .def_readwrite("image_height", &sightd::Transform::image_height)
      .def_readwrite("crop_x", &sightd::Transform::crop_x)
      .def_readwrite("crop_y", &sightd::Transform::crop_y)
      .def_readwrite("crop_width", &sightd::Transform::crop_width)
      .def_readwrite("crop_height", &sightd::Transform::crop_height)
      .def_readwrite("scale_x", &sightd::Transform::scale_x)
      .def_readwrite("scale_y", &sightd::Transform::scale_y)
      .def_readwrite("offset_x", &sightd::Transform::offset_x)
      .def_readwrite("offset_y", &sightd::Transform::offset_y)
      .def_readwrite("tensor_width", &sightd::Transform::tensor_width)
      .def_readwrite("tensor_height", &sightd::Transform::tensor_height)
      .def("to_image_x", &sightd::Transform::to_image_x, py::arg("tensor_x"))
      .def("to_image_y", &sightd::Transform::to_image_y, py::arg("tensor_y"))
      .def("__repr__", [](const sightd::Transform& t) {
        return "Transform(image=" + std::to_string(t.image_width) + "x" + std::to_string(t.image_height) +
               ", crop=(" + std::to_string(t.crop_x) + ", " + std::to_string(t.crop_y) + ", " +
               std::to_string(t.crop_width) + ", " + std::to_string(t.crop_height) + "), scale=(" +
               std::to_string(t.scale_x) + ", " + std::to_string(t.scale_y) + "), offset=(" +
               std::to_string(t.offset_x) + ", " + std::to_string(t.offset_y) + "), tensor=" +
               std::to_string(t.tensor_width) + "x" + std::to_string(t.tensor_height) + ")";
      });

  sightd::bindings::bind_image(m);
  sightd::bindings::bind_preprocess(m);
  sightd::bindings::bind_engine(m);
  sightd::bindings::bind_pipeline(m);
  sightd::bindings::bind_postprocess(m);
}
