// PostProcessor construction: the configuration is validated once, thresholds and class maps resolved, and
// the tensors to read fixed, so that process() only checks what depends on the tensors themselves.
#include <algorithm>
#include <cmath>
#include <set>

#include "postprocess_impl.hpp"
#include "sightd/error.hpp"

namespace sightd {

namespace {

void check(bool ok, const std::string& field, const std::string& message) {
  if (!ok) throw_invalid_argument(field, message);
}

bool unit_interval(double v) { return v >= 0.0 && v <= 1.0; }

std::string index_field(const std::string& name, std::size_t i) { return name + "[" + std::to_string(i) + "]"; }

}  // namespace

std::ptrdiff_t PostProcessor::Impl::require(const std::string& name) {
  auto it = std::find(required.begin(), required.end(), name);
  if (it != required.end()) return it - required.begin();
  required.push_back(name);
  return static_cast<std::ptrdiff_t>(required.size()) - 1;
}

PostProcessor::Impl::Impl(PostProcessingConfig c) : config(std::move(c)) {
  const LabelsSpec& spec = config.spec;
  const std::size_t labels = spec.labels.size();
  check(labels > 0, "spec.labels", "a spec output needs at least one label");
  check(labels <= 1000000, "spec.labels", "too many labels");
  std::set<int64_t> ids;
  for (std::size_t k = 0; k < labels; ++k) {
    check(ids.insert(spec.labels[k].id).second, index_field("spec.labels", k) + ".id",
          "duplicate label id " + std::to_string(spec.labels[k].id));
  }

  const bool detection = spec.roi == RoiType::kBbox;
  const double default_threshold = detection ? 0.8 : (spec.exclusive ? 0.025 : 0.5);
  if (config.thresholds.empty()) {
    thresholds.assign(labels, default_threshold);
  } else {
    check(config.thresholds.size() == labels, "thresholds",
          "expected one threshold per label (" + std::to_string(labels) + "), got " +
              std::to_string(config.thresholds.size()));
    for (std::size_t k = 0; k < labels; ++k) {
      check(unit_interval(config.thresholds[k]), index_field("thresholds", k), "must be a number in [0, 1]");
    }
    thresholds = config.thresholds;
  }

  if (!config.class_indices.empty()) {
    check(config.class_indices.size() == labels, "class_indices",
          "expected one network class per label (" + std::to_string(labels) + "), got " +
              std::to_string(config.class_indices.size()));
    std::set<int64_t> seen;
    for (std::size_t k = 0; k < labels; ++k) {
      const int64_t index = config.class_indices[k];
      check(index >= 0, index_field("class_indices", k), "must be >= 0");
      check(seen.insert(index).second, index_field("class_indices", k),
            "network class " + std::to_string(index) + " is given to two labels");
    }
  }

  if (!detection) {
    check(!config.classification.output_tensor.empty(), "classification.output_tensor", "is required");
    classification_at = require(config.classification.output_tensor);
    return;
  }

  DetectionOutput& d = config.detection;
  check(unit_interval(d.discard_threshold), "detection.discard_threshold", "must be a number in [0, 1]");
  check(unit_interval(d.nms_threshold), "detection.nms_threshold", "must be a number in [0, 1]");
  floors.floor.resize(labels);
  for (std::size_t k = 0; k < labels; ++k) floors.floor[k] = std::min(d.discard_threshold, thresholds[k]);
  floors.lowest = *std::min_element(floors.floor.begin(), floors.floor.end());

  switch (d.format) {
    case DetectionFormat::kAnchored:
      check(!d.anchored.anchors_tensor.empty(), "detection.anchored_output.anchors_tensor", "is required");
      check(!d.anchored.scores_tensor.empty(), "detection.anchored_output.scores_tensor", "is required");
      check(!d.anchored.offsets_tensor.empty(), "detection.anchored_output.offsets_tensor", "is required");
      anchors_at = require(d.anchored.anchors_tensor);
      scores_at = require(d.anchored.scores_tensor);
      offsets_at = require(d.anchored.offsets_tensor);
      break;
    case DetectionFormat::kDirect: {
      check(!d.direct.boxes_tensor.empty(), "detection.direct_output.boxes_tensor", "is required");
      check(!d.direct.scores_tensor.empty(), "detection.direct_output.scores_tensor", "is required");
      check(!d.direct.classes_tensor.empty(), "detection.direct_output.classes_tensor", "is required");
      boxes_at = require(d.direct.boxes_tensor);
      scores_at = require(d.direct.scores_tensor);
      classes_at = require(d.direct.classes_tensor);
      if (!d.direct.num_detections_tensor.empty()) num_detections_at = require(d.direct.num_detections_tensor);
      // The classes tensor holds class values: a label's id, unless class_indices says otherwise.
      for (std::size_t k = 0; k < labels; ++k) {
        const int64_t value = config.class_indices.empty() ? spec.labels[k].id : config.class_indices[k];
        direct_classes.emplace_back(value, static_cast<int32_t>(k));
      }
      std::sort(direct_classes.begin(), direct_classes.end());
      break;
    }
    case DetectionFormat::kYolo: {
      check(!d.yolo.heads.empty(), "detection.yolo_output.output_tensors", "at least one output tensor is required");
      check(d.normalize_wrt_tensor.empty(), "detection.normalize_wrt_tensor",
            "yolo_output boxes are relative to the grid: normalize_wrt_tensor must be empty");
      check(d.yolo.class_activation == Activation::kSoftmax || d.yolo.class_activation == Activation::kSigmoid,
            "detection.yolo_output.class_activation", "must be SOFTMAX or SIGMOID");
      for (std::size_t h = 0; h < d.yolo.heads.size(); ++h) {
        const YoloHead& head = d.yolo.heads[h];
        const std::string field = index_field("detection.yolo_output.output_tensors", h);
        check(!head.output_tensor.empty(), field + ".output_tensor", "is required");
        check(!head.anchors.empty() && head.anchors.size() % 2 == 0, field + ".anchors",
              "expected (width, height) pairs");
        for (std::size_t i = 0; i < head.anchors.size(); ++i) {
          check(std::isfinite(head.anchors[i]) && head.anchors[i] > 0.0, index_field(field + ".anchors", i),
                "must be a positive number");
        }
        heads_at.push_back(require(head.output_tensor));
      }
      break;
    }
  }
  if (!d.normalize_wrt_tensor.empty()) normalize_at = require(d.normalize_wrt_tensor);
}

PostProcessor::PostProcessor(PostProcessingConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
PostProcessor::~PostProcessor() = default;

const PostProcessingConfig& PostProcessor::config() const noexcept { return impl_->config; }
const std::vector<double>& PostProcessor::thresholds() const noexcept { return impl_->thresholds; }
const std::vector<std::string>& PostProcessor::required_tensors() const noexcept { return impl_->required; }

}  // namespace sightd
