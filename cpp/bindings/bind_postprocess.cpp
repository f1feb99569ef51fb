// Binding of the post-processing: its configuration structures, PostProcessor and NMS.
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "common.hpp"
#include "sightd/error.hpp"
#include "sightd/nms.hpp"
#include "sightd/postprocess.hpp"

namespace sightd::bindings {

namespace {

// Element i of a numeric tensor as double, with the common float types read directly.
template <typename Fn>
void for_each_value(const Tensor& t, std::size_t count, Fn&& fn) {
  if (t.type == ElementType::kFloat32) {
    const float* p = t.as<float>();
    for (std::size_t i = 0; i < count; ++i) fn(i, static_cast<double>(p[i]));
  } else if (t.type == ElementType::kFloat64) {
    const double* p = t.as<double>();
    for (std::size_t i = 0; i < count; ++i) fn(i, p[i]);
  } else {
    for (std::size_t i = 0; i < count; ++i) fn(i, t.value_as_double(i));
  }
}

// A C-contiguous view of `object` (a copy for strided arrays such as dets[:, :4], or for lists).
py::array contiguous(const py::object& object, const std::string& field) {
  py::array array = py::array::ensure(object, py::array::c_style);
  if (!array) throw_invalid_argument(field, "must be a numeric array");
  return array;
}

std::vector<NmsBox> boxes_from(const py::object& object) {
  Tensor t = numpy_to_tensor(contiguous(object, "boxes"), "boxes");
  if (t.shape.size() != 2 || t.shape[1] != 4) {
    throw_invalid_argument("boxes", "expected an array [N, 4] of x1, y1, x2, y2, got " + shape_to_string(t.shape));
  }
  std::vector<NmsBox> boxes(static_cast<std::size_t>(t.shape[0]));
  std::vector<double> flat(4 * boxes.size());
  for_each_value(t, flat.size(), [&flat](std::size_t i, double v) { flat[i] = v; });
  for (std::size_t i = 0; i < boxes.size(); ++i) boxes[i] = {flat[4 * i], flat[4 * i + 1], flat[4 * i + 2], flat[4 * i + 3]};
  return boxes;
}

std::vector<double> vector_from(const py::object& object, std::size_t count, const std::string& field) {
  Tensor t = numpy_to_tensor(contiguous(object, field), field);
  if (t.shape.size() != 1 || static_cast<std::size_t>(t.shape[0]) != count) {
    throw_invalid_argument(field, "expected an array [" + std::to_string(count) + "], got " + shape_to_string(t.shape));
  }
  std::vector<double> out(count);
  for_each_value(t, count, [&out](std::size_t i, double v) { out[i] = v; });
  return out;
}

}  // namespace

void bind_postprocess(py::module_& m) {
  py::enum_<RoiType>(m, "RoiType").value("NONE", RoiType::kNone).value("BBOX", RoiType::kBbox);
  py::enum_<Activation>(m, "Activation")
      .value("NONE", Activation::kNone)
      .value("SOFTMAX", Activation::kSoftmax)
      .value("SIGMOID", Activation::kSigmoid);
  py::enum_<DetectionFormat>(m, "DetectionFormat")
      .value("ANCHORED", DetectionFormat::kAnchored)
      .value("DIRECT", DetectionFormat::kDirect)
      .value("YOLO", DetectionFormat::kYolo);

  py::class_<SpecLabel>(m, "SpecLabel")
      .def(py::init([](int64_t id, std::string name) { return SpecLabel{id, std::move(name)}; }), py::arg("id"),
           py::arg("name"))
      .def_readwrite("id", &SpecLabel::id)
      .def_readwrite("name", &SpecLabel::name);
  py::class_<LabelsSpec>(m, "LabelsSpec")
      .def(py::init<>())
      .def_readwrite("roi", &LabelsSpec::roi)
      .def_readwrite("exclusive", &LabelsSpec::exclusive)
      .def_readwrite("labels", &LabelsSpec::labels);
  py::class_<ClassificationOutput>(m, "ClassificationOutput")
      .def(py::init<>())
      .def_readwrite("output_tensor", &ClassificationOutput::output_tensor)
      .def_readwrite("activation", &ClassificationOutput::activation);
  py::class_<AnchoredOutput>(m, "AnchoredOutput")
      .def(py::init<>())
      .def_readwrite("anchors_tensor", &AnchoredOutput::anchors_tensor)
      .def_readwrite("scores_tensor", &AnchoredOutput::scores_tensor)
      .def_readwrite("offsets_tensor", &AnchoredOutput::offsets_tensor)
      .def_readwrite("legacy_plus_one", &AnchoredOutput::legacy_plus_one);
  py::class_<DirectOutput>(m, "DirectOutput")
      .def(py::init<>())
      .def_readwrite("boxes_tensor", &DirectOutput::boxes_tensor)
      .def_readwrite("scores_tensor", &DirectOutput::scores_tensor)
      .def_readwrite("classes_tensor", &DirectOutput::classes_tensor)
      .def_readwrite("num_detections_tensor", &DirectOutput::num_detections_tensor);
  py::class_<YoloHead>(m, "YoloHead")
      .def(py::init([](std::string output_tensor, std::vector<double> anchors) {
             return YoloHead{std::move(output_tensor), std::move(anchors)};
           }),
           py::arg("output_tensor"), py::arg("anchors"))
      .def_readwrite("output_tensor", &YoloHead::output_tensor)
      .def_readwrite("anchors", &YoloHead::anchors);
  py::class_<YoloOutput>(m, "YoloOutput")
      .def(py::init<>())
      .def_readwrite("heads", &YoloOutput::heads)
      .def_readwrite("class_activation", &YoloOutput::class_activation);
  py::class_<DetectionOutput>(m, "DetectionOutput")
      .def(py::init<>())
      .def_readwrite("format", &DetectionOutput::format)
      .def_readwrite("anchored", &DetectionOutput::anchored)
      .def_readwrite("direct", &DetectionOutput::direct)
      .def_readwrite("yolo", &DetectionOutput::yolo)
      .def_readwrite("discard_threshold", &DetectionOutput::discard_threshold)
      .def_readwrite("nms_threshold", &DetectionOutput::nms_threshold)
      .def_readwrite("normalize_wrt_tensor", &DetectionOutput::normalize_wrt_tensor)
      .def_readwrite("nms_class_agnostic", &DetectionOutput::nms_class_agnostic);
  py::class_<PostProcessingConfig>(m, "PostProcessingConfig")
      .def(py::init<>())
      .def_readwrite("spec", &PostProcessingConfig::spec)
      .def_readwrite("classification", &PostProcessingConfig::classification)
      .def_readwrite("detection", &PostProcessingConfig::detection)
      .def_readwrite("thresholds", &PostProcessingConfig::thresholds)
      .def_readwrite("class_indices", &PostProcessingConfig::class_indices);

  py::class_<BBox>(m, "BBox")
      .def_readonly("xmin", &BBox::xmin)
      .def_readonly("ymin", &BBox::ymin)
      .def_readonly("xmax", &BBox::xmax)
      .def_readonly("ymax", &BBox::ymax);
  py::class_<Prediction>(m, "Prediction")
      .def_readonly("label_index", &Prediction::label_index)
      .def_readonly("label_id", &Prediction::label_id)
      .def_readonly("label_name", &Prediction::label_name)
      .def_readonly("score", &Prediction::score)
      .def_readonly("threshold", &Prediction::threshold)
      .def_readonly("region_id", &Prediction::region_id)
      .def_readonly("bbox", &Prediction::bbox);
  py::class_<LabelsResult>(m, "LabelsResult")
      .def_readonly("has_roi", &LabelsResult::has_roi)
      .def_readonly("predicted", &LabelsResult::predicted)
      .def_readonly("discarded", &LabelsResult::discarded);

  py::class_<PostProcessor>(m, "PostProcessor")
      .def(py::init<PostProcessingConfig>(), py::arg("config"))
      .def_property_readonly("thresholds", &PostProcessor::thresholds)
      .def_property_readonly("required_tensors", &PostProcessor::required_tensors)
      .def(
          "process",
          [](const PostProcessor& self, const py::dict& outputs, const Transform& transform, bool show_discarded,
             int max_predictions) {
            std::vector<Tensor> tensors;
            for (const std::string& name : self.required_tensors()) {
              py::str key(name);
              if (!outputs.contains(key)) throw_invalid_argument("outputs", "the network output '" + name + "' is missing");
              py::array array = py::array::ensure(outputs[key], py::array::c_style);
              if (!array) throw_invalid_argument(name, "the network output must be a numeric array");
              tensors.push_back(numpy_to_tensor(array, name));
            }
            py::gil_scoped_release release;
            return self.process(tensors, transform, show_discarded, max_predictions);
          },
          py::arg("outputs"), py::arg("transform"), py::arg("show_discarded") = false,
          py::arg("max_predictions") = -1);

  m.def(
      "nms",
      [](const py::object& boxes, const py::object& scores, const py::object& classes, double iou_threshold) {
        std::vector<NmsBox> b = boxes_from(boxes);
        std::vector<double> s = vector_from(scores, b.size(), "scores");
        std::vector<int32_t> c;
        if (!classes.is_none()) {
          std::vector<double> values = vector_from(classes, b.size(), "classes");
          c.reserve(values.size());
          for (double v : values) {
            if (!(v >= -2147483648.0 && v <= 2147483647.0)) throw_invalid_argument("classes", "must fit in int32");
            c.push_back(static_cast<int32_t>(v));
          }
        }
        std::vector<uint32_t> kept;
        {
          py::gil_scoped_release release;
          kept = nms(b, s, c, iou_threshold);
        }
        py::array_t<int64_t> out(static_cast<py::ssize_t>(kept.size()));
        auto view = out.mutable_unchecked<1>();
        for (std::size_t i = 0; i < kept.size(); ++i) view(static_cast<py::ssize_t>(i)) = kept[i];
        return out;
      },
      py::arg("boxes"), py::arg("scores"), py::arg("classes") = py::none(), py::arg("iou_threshold") = 0.3);
}

}  // namespace sightd::bindings
