// The thread pool that decodes and preprocesses the images of a batch, and the pipeline (decode ->
// preprocess -> ONNX Runtime) that takes one. Pipeline.run borrows the encoded bytes without copying them
// and releases the GIL for the whole batch.
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "sightd/error.hpp"
#include "sightd/pipeline.hpp"
#include "sightd/thread_pool.hpp"

namespace sightd::bindings {

namespace {

// Encoded bytes exported by a bytes-like object for the duration of a run (a bytearray cannot be resized
// while exported). Created and destroyed with the GIL held.
class BorrowedBytes {
 public:
  BorrowedBytes(const py::handle& object, const std::string& field) {
    if (PyObject_GetBuffer(object.ptr(), &view_, PyBUF_SIMPLE) != 0) {
      PyErr_Clear();
      throw_invalid_argument(field, "expected a bytes-like object (bytes, bytearray, memoryview)");
    }
  }
  ~BorrowedBytes() { PyBuffer_Release(&view_); }
  BorrowedBytes(const BorrowedBytes&) = delete;
  BorrowedBytes& operator=(const BorrowedBytes&) = delete;

  const uint8_t* data() const { return static_cast<const uint8_t*>(view_.buf); }
  std::size_t size() const { return static_cast<std::size_t>(view_.len); }

 private:
  Py_buffer view_{};
};

// One image's result, as Python sees it: NumPy outputs by name instead of a vector of tensors.
struct ImageResult {
  bool ok = false;
  ErrorCode error_code = ErrorCode::kInternal;
  std::string error_field;
  std::string error_message;
  std::vector<Transform> transforms;
  py::dict outputs;
};

const char* error_class(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "InvalidArgumentError";
    case ErrorCode::kInvalidImage: return "ImageError";
    case ErrorCode::kImageTooLarge: return "ImageTooLargeError";
    case ErrorCode::kEngine: return "EngineError";
    case ErrorCode::kInternal: break;
  }
  return "CoreError";
}

py::object error_of(const ImageResult& result) {
  if (result.ok) return py::none();
  py::object cls = py::module_::import("sightd.errors").attr(error_class(result.error_code));
  return cls(result.error_message, py::arg("field") = result.error_field);
}

std::shared_ptr<Pipeline> make_pipeline(std::shared_ptr<Session> session, PreprocessingSpec spec,
                                        std::vector<std::string> output_names, bool reduced_decoding,
                                        int64_t max_pixels, std::shared_ptr<ThreadPool> pool) {
  if (max_pixels < 1) throw_invalid_argument("max_pixels", "must be positive");
  BatchOptions options;
  options.reduced_decoding = reduced_decoding;
  options.decode.max_pixels = max_pixels;
  options.pool = std::move(pool);
  py::gil_scoped_release release;
  return std::make_shared<Pipeline>(std::move(session), std::move(spec), std::move(output_names),
                                    std::move(options));
}

std::vector<ImageResult> run_pipeline(const Pipeline& pipeline, const py::sequence& images) {
  std::vector<std::unique_ptr<BorrowedBytes>> borrowed;
  std::vector<ImageRequest> requests;
  borrowed.reserve(images.size());
  requests.reserve(images.size());
  for (std::size_t i = 0; i < images.size(); ++i) {
    const std::string field = "images[" + std::to_string(i) + "]";
    py::object item = images[i];
    py::object data = item;
    ImageRequest request;
    if (py::isinstance<py::tuple>(item)) {
      auto pair = item.cast<py::tuple>();
      if (pair.size() != 2) throw_invalid_argument(field, "expected (bytes, Roi or None)");
      data = pair[0];
      if (!pair[1].is_none()) {
        try {
          request.roi = pair[1].cast<Roi>();
        } catch (const py::cast_error&) {
          throw_invalid_argument(field + ".roi", "expected a sightd._core.Roi or None");
        }
      }
    }
    borrowed.push_back(std::make_unique<BorrowedBytes>(data, field));
    request.data = borrowed.back()->data();
    request.size = borrowed.back()->size();
    requests.push_back(std::move(request));
  }
  std::vector<ImageOutcome> outcomes;
  {
    py::gil_scoped_release release;
    outcomes = pipeline.run(requests);
  }
  const std::vector<std::string>& names = pipeline.output_names();
  std::vector<ImageResult> results(outcomes.size());
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    ImageOutcome& outcome = outcomes[i];
    ImageResult& result = results[i];
    result.ok = outcome.ok;
    result.error_code = outcome.error_code;
    result.error_field = std::move(outcome.error_field);
    result.error_message = std::move(outcome.error_message);
    result.transforms = std::move(outcome.transforms);
    for (std::size_t o = 0; o < outcome.outputs.size() && o < names.size(); ++o) {
      result.outputs[py::str(names[o])] = tensor_to_numpy(outcome.outputs[o]);
    }
  }
  return results;
}

}  // namespace

void bind_pipeline(py::module_& m) {
  py::class_<ThreadPool, std::shared_ptr<ThreadPool>>(m, "ThreadPool")
      .def(py::init<int>(), py::arg("threads"))
      .def_property_readonly("size", &ThreadPool::size);

  py::class_<ImageResult>(m, "ImageResult")
      .def_readonly("ok", &ImageResult::ok)
      .def_readonly("error_code", &ImageResult::error_code)
      .def_readonly("error_field", &ImageResult::error_field)
      .def_readonly("error_message", &ImageResult::error_message)
      .def_property_readonly("error", &error_of)
      .def_readonly("transforms", &ImageResult::transforms)
      .def_readonly("outputs", &ImageResult::outputs)
      .def("__repr__", [](const ImageResult& result) {
        if (!result.ok) {
          return "ImageResult(error=" + std::string(error_class(result.error_code)) + "('" + result.error_field +
                 "', '" + result.error_message + "'))";
        }
        return "ImageResult(ok, outputs=" + py::str(py::list(result.outputs.attr("keys")())).cast<std::string>() +
               ")";
      });

  py::class_<Pipeline, std::shared_ptr<Pipeline>>(m, "Pipeline")
      .def(py::init(&make_pipeline), py::arg("session"), py::arg("spec"),
           py::arg("output_names") = std::vector<std::string>(), py::arg("reduced_decoding") = false,
           py::arg("max_pixels") = DecodeOptions().max_pixels, py::arg("pool") = std::shared_ptr<ThreadPool>())
      .def_property_readonly("output_names", &Pipeline::output_names)
      .def_property_readonly("max_batch", &Pipeline::max_batch)
      .def_property_readonly("spec", &Pipeline::spec)
      .def("run", &run_pipeline, py::arg("images"));
}

}  // namespace sightd::bindings
