// The thread pool that decodes and preprocesses the images of a batch, the pipeline (decode -> preprocess ->
// ONNX Runtime) that takes one, and the Recognizer (the pipeline plus post-processing). Pipeline.run and
// Recognizer.recognize borrow the encoded bytes without copying them and release the GIL for the whole batch.
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "sightd/error.hpp"
#include "sightd/pipeline.hpp"
#include "sightd/postprocess.hpp"
#include "sightd/recognizer.hpp"
#include "sightd/result_message.hpp"
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
  py::dict constants;
};

// One image's outcome of Recognizer.recognize, as Python sees it.
struct RecognitionResult {
  Recognition recognition;
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

py::object error_object(bool ok, ErrorCode code, const std::string& field, const std::string& message) {
  if (ok) return py::none();
  py::object cls = py::module_::import("sightd.errors").attr(error_class(code));
  return cls(message, py::arg("field") = field);
}

py::object error_of(const ImageResult& result) {
  return error_object(result.ok, result.error_code, result.error_field, result.error_message);
}

std::string error_repr(const char* type, ErrorCode code, const std::string& field, const std::string& message) {
  return std::string(type) + "(error=" + error_class(code) + "('" + field + "', '" + message + "'))";
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

// The encoded images of a Python list, borrowed (no copy) for as long as this lives. Built with the GIL.
struct Requests {
  std::vector<std::unique_ptr<BorrowedBytes>> borrowed;
  std::vector<ImageRequest> images;

  explicit Requests(const py::sequence& items) {
    borrowed.reserve(items.size());
    images.reserve(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
      const std::string field = "images[" + std::to_string(i) + "]";
      py::object item = items[i];
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
      images.push_back(std::move(request));
    }
  }
};

std::vector<ImageResult> run_pipeline(const Pipeline& pipeline, const py::sequence& items, StageTimes* times) {
  Requests requests(items);
  std::vector<ImageOutcome> outcomes;
  StageTimes measured;
  {
    py::gil_scoped_release release;
    outcomes = pipeline.run(requests.images, &measured);
  }
  if (times) *times = measured;
  const std::vector<std::string>& names = pipeline.output_names();
  const auto& constants = pipeline.spec().constant_inputs;
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
    for (std::size_t c = 0; c < outcome.constants.size() && c < constants.size(); ++c) {
      result.constants[py::str(constants[c].tensor_name)] = tensor_to_numpy(outcome.constants[c]);
    }
  }
  return results;
}

// Each post-processor is rebuilt from its configuration: the Python objects own theirs (PostProcessor
// cannot be copied or shared), and validating a configuration again costs microseconds, once per version.
std::shared_ptr<Recognizer> make_recognizer(std::shared_ptr<Pipeline> pipeline, const py::object& post_processors) {
  std::vector<const PostProcessor*> given;
  if (py::isinstance<PostProcessor>(post_processors)) {
    given.push_back(&post_processors.cast<const PostProcessor&>());
  } else if (py::isinstance<py::sequence>(post_processors) && !py::isinstance<py::str>(post_processors)) {
    for (const py::handle item : post_processors.cast<py::sequence>()) {
      if (!py::isinstance<PostProcessor>(item)) {
        throw_invalid_argument("post_processings", "expected sightd._core.PostProcessor objects");
      }
      given.push_back(&item.cast<const PostProcessor&>());
    }
  } else {
    throw_invalid_argument("post_processings", "expected a PostProcessor or a sequence of them");
  }
  std::vector<PostProcessingConfig> configs;
  configs.reserve(given.size());
  for (const PostProcessor* processor : given) configs.push_back(processor->config());
  py::gil_scoped_release release;
  std::vector<std::shared_ptr<const PostProcessor>> processors;
  for (auto& config : configs) processors.push_back(std::make_shared<const PostProcessor>(std::move(config)));
  return std::make_shared<Recognizer>(std::move(pipeline), std::move(processors));
}

std::vector<RecognitionResult> recognize(const Recognizer& recognizer, const py::sequence& items,
                                         bool show_discarded, const std::optional<int64_t>& max_predictions,
                                         StageTimes* times) {
  if (max_predictions && *max_predictions < 0) {
    throw_invalid_argument("max_predictions", "must be a non-negative integer or None");
  }
  const int cap = !max_predictions ? -1 : static_cast<int>(std::min<int64_t>(*max_predictions, INT32_MAX));
  Requests requests(items);
  std::vector<Recognition> recognitions;
  StageTimes measured;
  {
    py::gil_scoped_release release;
    recognitions = recognizer.recognize(requests.images, show_discarded, cap, &measured);
  }
  if (times) *times = measured;
  std::vector<RecognitionResult> results;
  results.reserve(recognitions.size());
  for (Recognition& recognition : recognitions) results.push_back({std::move(recognition)});
  return results;
}

}  // namespace

void bind_pipeline(py::module_& m) {
  py::class_<ThreadPool, std::shared_ptr<ThreadPool>>(m, "ThreadPool")
      .def(py::init<int>(), py::arg("threads"))
      .def_property_readonly("size", &ThreadPool::size);

  // Written by Pipeline.run / Recognizer.recognize (times=...) once the batch is done, with the GIL held.
  py::class_<StageTimes>(m, "StageTimes")
      .def(py::init<>())
      .def_readonly("decode_preprocess", &StageTimes::decode_preprocess)
      .def_readonly("inference", &StageTimes::inference)
      .def_readonly("postprocess", &StageTimes::postprocess)
      .def("__repr__", [](const StageTimes& t) {
        return "StageTimes(decode_preprocess=" + std::to_string(t.decode_preprocess) +
               ", inference=" + std::to_string(t.inference) + ", postprocess=" + std::to_string(t.postprocess) + ")";
      });

  py::class_<ImageResult>(m, "ImageResult")
      .def_readonly("ok", &ImageResult::ok)
      .def_readonly("error_code", &ImageResult::error_code)
      .def_readonly("error_field", &ImageResult::error_field)
      .def_readonly("error_message", &ImageResult::error_message)
      .def_property_readonly("error", &error_of)
      .def_readonly("transforms", &ImageResult::transforms)
      .def_readonly("outputs", &ImageResult::outputs)
      .def_readonly("constants", &ImageResult::constants)
      .def("__repr__", [](const ImageResult& result) {
        if (!result.ok) return error_repr("ImageResult", result.error_code, result.error_field, result.error_message);
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
      .def("run", &run_pipeline, py::arg("images"), py::kw_only(), py::arg("times") = nullptr);

  py::class_<RecognitionResult>(m, "RecognitionResult")
      .def_property_readonly("ok", [](const RecognitionResult& r) { return r.recognition.ok; })
      .def_property_readonly("error_code", [](const RecognitionResult& r) { return r.recognition.error_code; })
      .def_property_readonly("error_field", [](const RecognitionResult& r) { return r.recognition.error_field; })
      .def_property_readonly("error_message",
                             [](const RecognitionResult& r) { return r.recognition.error_message; })
      .def_property_readonly("error",
                             [](const RecognitionResult& r) {
                               const Recognition& x = r.recognition;
                               return error_object(x.ok, x.error_code, x.error_field, x.error_message);
                             })
      .def_property_readonly("outputs", [](const RecognitionResult& r) { return r.recognition.outputs; })
      .def_property_readonly("message",
                             [](const RecognitionResult& r) -> py::object {
                               if (!r.recognition.ok) return py::none();
                               std::optional<std::string> message =
                                   recognition_result_message(r.recognition.outputs);
                               if (!message) return py::none();
                               return py::bytes(*message);
                             })
      .def("__repr__", [](const RecognitionResult& r) {
        const Recognition& x = r.recognition;
        if (!x.ok) return error_repr("RecognitionResult", x.error_code, x.error_field, x.error_message);
        std::string text = "RecognitionResult(ok, predicted=[";
        for (std::size_t o = 0; o < x.outputs.size(); ++o) {
          text += (o ? ", " : "") + std::to_string(x.outputs[o].predicted.size());
        }
        return text + "])";
      });

  py::class_<Recognizer, std::shared_ptr<Recognizer>>(m, "Recognizer")
      .def(py::init(&make_recognizer), py::arg("pipeline"), py::arg("post_processors"))
      .def_property_readonly("output_count", &Recognizer::output_count)
      .def("recognize", &recognize, py::arg("images"), py::arg("show_discarded") = false,
           py::arg("max_predictions") = py::none(), py::kw_only(), py::arg("times") = nullptr);
}

}  // namespace sightd::bindings
