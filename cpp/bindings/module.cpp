// sightd._core: the compiled core's Python module. Errors of the core become the exception classes of
// sightd.errors (with the offending field); each part of the core registers itself from its own file.
#include <pybind11/pybind11.h>

#include "common.hpp"
#include "sightd/error.hpp"

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

  sightd::bindings::bind_image(m);
  sightd::bindings::bind_preprocess(m);
  sightd::bindings::bind_engine(m);
  sightd::bindings::bind_pipeline(m);
  sightd::bindings::bind_postprocess(m);
}
