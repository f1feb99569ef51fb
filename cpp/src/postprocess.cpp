// PostProcessor::process: one image's output tensors -> predicted and discarded labels.
#include <algorithm>
#include <cmath>
#include <limits>

#include "postprocess_impl.hpp"
#include "sightd/error.hpp"
#include "sightd/nms.hpp"

namespace sightd {

namespace {

// Per-thread buffers: process() allocates only its results once a thread has warmed these up.
struct Scratch {
  std::vector<detail::FloatValues> values;
  std::vector<detail::Candidate> candidates;
  std::vector<NmsBox> boxes;
  std::vector<double> scores;
  std::vector<int32_t> labels;
  std::vector<uint32_t> kept;
  std::vector<uint32_t> order;
  std::vector<double> doubles;
  std::vector<double> label_scores;
  std::vector<int64_t> columns;
  NmsWorkspace nms;
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

const Tensor& tensor_at(const std::vector<Tensor>& tensors, std::ptrdiff_t position) {
  return tensors[static_cast<std::size_t>(position)];
}

Prediction make_prediction(const LabelsSpec& spec, const std::vector<double>& thresholds, int32_t label,
                           double score) {
  Prediction p;
  const auto k = static_cast<std::size_t>(label);
  p.label_index = label;
  p.label_id = spec.labels[k].id;
  p.label_name = spec.labels[k].name;
  p.score = score;
  p.threshold = thresholds[k];
  return p;
}

void check_transform(const Transform& t, bool needs_tensor_size) {
  if (t.image_width <= 0 || t.image_height <= 0) {
    throw_invalid_argument("transform", "the image size must be positive");
  }
  if (!(t.scale_x > 0.0 && t.scale_y > 0.0 && std::isfinite(t.scale_x) && std::isfinite(t.scale_y))) {
    throw_invalid_argument("transform", "the scales must be positive");
  }
  if (needs_tensor_size && (t.tensor_width <= 0 || t.tensor_height <= 0)) {
    throw_invalid_argument("transform", "the tensor size must be positive");
  }
}

std::size_t to_size(int64_t v) { return static_cast<std::size_t>(v); }

}  // namespace

LabelsResult PostProcessor::process(const std::vector<Tensor>& tensors, const Transform& transform,
                                    bool show_discarded, int max_predictions) const {
  if (tensors.size() != impl_->required.size()) {
    throw_invalid_argument("outputs", "expected " + std::to_string(impl_->required.size()) +
                                          " tensors (required_tensors()), got " + std::to_string(tensors.size()));
  }
  const std::size_t cap = max_predictions < 0 ? std::numeric_limits<std::size_t>::max()
                                              : static_cast<std::size_t>(max_predictions);
  LabelsResult result;
  result.has_roi = impl_->config.spec.roi == RoiType::kBbox;
  if (result.has_roi) {
    impl_->detect(tensors, transform, show_discarded, cap, result);
  } else {
    impl_->classify(tensors, show_discarded, cap, result);
  }
  return result;
}

LabelsResult PostProcessor::process(const std::vector<std::string>& names, const std::vector<Tensor>& tensors,
                                    const Transform& transform, bool show_discarded, int max_predictions) const {
  if (names.size() != tensors.size()) {
    throw_invalid_argument("outputs", "as many names as tensors are needed");
  }
  std::vector<Tensor> ordered;
  ordered.reserve(impl_->required.size());
  for (const std::string& name : impl_->required) {
    auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) throw_invalid_argument("outputs", "the network output '" + name + "' is missing");
    ordered.push_back(tensors[static_cast<std::size_t>(it - names.begin())]);
  }
  return process(ordered, transform, show_discarded, max_predictions);
}

void PostProcessor::Impl::classify(const std::vector<Tensor>& tensors, bool show_discarded, std::size_t cap,
                                   LabelsResult& result) const {
  Scratch& s = scratch();
  s.values.resize(1);
  const Tensor& tensor = tensor_at(tensors, classification_at);
  const std::string field = "classification.output_tensor";
  std::size_t wide_dims = 0;
  for (int64_t d : tensor.shape) wide_dims += d != 1 ? 1 : 0;
  if (wide_dims > 1) {
    throw_invalid_argument(field, "expected a vector of class scores ([classes], with any dimensions of 1), got " +
                                      shape_to_string(tensor.shape));
  }
  s.values[0].assign(tensor, field);
  const std::size_t count = s.values[0].size();
  const std::size_t labels = config.spec.labels.size();
  auto& columns = s.columns;
  if (config.class_indices.empty()) {
    if (count != labels) {
      throw_invalid_argument(field, "the network outputs " + std::to_string(count) + " classes but the spec has " +
                                        std::to_string(labels) + " labels (class_indices maps them otherwise)");
    }
    columns.resize(labels);
    for (std::size_t k = 0; k < labels; ++k) columns[k] = static_cast<int64_t>(k);
  } else {
    columns = config.class_indices;
    for (std::size_t k = 0; k < labels; ++k) {
      if (to_size(columns[k]) >= count) {
        throw_invalid_argument("class_indices[" + std::to_string(k) + "]",
                               "network class " + std::to_string(columns[k]) + " is beyond the " +
                                   std::to_string(count) + " classes of " + config.classification.output_tensor);
      }
    }
  }
  detail::classification_scores(s.values[0].data(), count, config.classification.activation, columns, s.doubles,
                                s.label_scores);
  const std::vector<double>& scores = s.label_scores;
  // Best first; ties by spec order.
  auto better = [&scores](uint32_t a, uint32_t b) { return scores[a] > scores[b] || (scores[a] == scores[b] && a < b); };
  for (int pass = 0; pass < (show_discarded ? 2 : 1); ++pass) {
    auto& order = s.order;
    order.clear();
    for (std::size_t k = 0; k < labels; ++k) {
      if (!std::isfinite(scores[k])) continue;
      if ((scores[k] >= thresholds[k]) == (pass == 0)) order.push_back(static_cast<uint32_t>(k));
    }
    const std::size_t n = std::min(cap, order.size());
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n), order.end(), better);
    auto& out = pass == 0 ? result.predicted : result.discarded;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      out.push_back(make_prediction(config.spec, thresholds, static_cast<int32_t>(order[i]), scores[order[i]]));
    }
  }
}

void PostProcessor::Impl::detect(const std::vector<Tensor>& tensors, const Transform& transform,
                                 bool show_discarded, std::size_t cap, LabelsResult& result) const {
  Scratch& s = scratch();
  const DetectionOutput& d = config.detection;
  const std::size_t labels = config.spec.labels.size();
  s.values.resize(std::max<std::size_t>(required.size(), 1));
  auto values = [&](std::ptrdiff_t position, const std::string& field) -> detail::FloatValues& {
    detail::FloatValues& v = s.values[static_cast<std::size_t>(position)];
    v.assign(tensor_at(tensors, position), field);
    return v;
  };
  auto& candidates = s.candidates;
  candidates.clear();
  // Native decoder coordinates -> input tensor pixels: tensor_x = native_x * fx.
  double fx = 1.0, fy = 1.0;
  bool needs_tensor_size = true;

  switch (d.format) {
    case DetectionFormat::kAnchored: {
      const std::string f = "detection.anchored_output.";
      const auto ashape = detail::shape_of_rank(tensor_at(tensors, anchors_at), 2, f + "anchors_tensor", "[N, 4] or [N, 5]");
      const auto sshape = detail::shape_of_rank(tensor_at(tensors, scores_at), 2, f + "scores_tensor", "[N, classes]");
      const auto oshape = detail::shape_of_rank(tensor_at(tensors, offsets_at), 2, f + "offsets_tensor", "[N, 4 x classes]");
      const int64_t rows = ashape[0], columns = sshape[1];
      if (ashape[1] != 4 && ashape[1] != 5) {
        throw_invalid_argument(f + "anchors_tensor", "expected 4 or 5 values per anchor, got " + shape_to_string(ashape));
      }
      if (sshape[0] != rows || oshape[0] != rows) {
        throw_invalid_argument(f + "scores_tensor", "anchors, scores and offsets must have as many rows (" +
                                                        shape_to_string(ashape) + ", " + shape_to_string(sshape) +
                                                        ", " + shape_to_string(oshape) + ")");
      }
      // Divided rather than 4 x columns: an empty tensor may declare any number of columns.
      const bool per_column_offsets = oshape[1] % 4 == 0 && oshape[1] / 4 == columns;
      if (!per_column_offsets && oshape[1] != 4) {
        throw_invalid_argument(f + "offsets_tensor", "expected 4 x " + std::to_string(columns) +
                                                         " or 4 offsets per anchor, got " + shape_to_string(oshape));
      }
      auto& cols = s.columns;
      if (config.class_indices.empty()) {
        if (to_size(columns) != labels && to_size(columns) != labels + 1) {
          throw_invalid_argument(f + "scores_tensor", "the network scores " + std::to_string(columns) +
                                                          " classes but the spec has " + std::to_string(labels) +
                                                          " labels (plus background); class_indices maps them otherwise");
        }
        const int64_t shift = to_size(columns) == labels + 1 ? 1 : 0;  // column 0 is the background
        cols.resize(labels);
        for (std::size_t k = 0; k < labels; ++k) cols[k] = static_cast<int64_t>(k) + shift;
      } else {
        cols = config.class_indices;
        for (std::size_t k = 0; k < labels; ++k) {
          if (cols[k] >= columns) {
            throw_invalid_argument("class_indices[" + std::to_string(k) + "]",
                                   "column " + std::to_string(cols[k]) + " is beyond the " + std::to_string(columns) +
                                       " columns of " + d.anchored.scores_tensor);
          }
        }
      }
      detail::AnchoredInputs in{};
      in.anchors = values(anchors_at, f + "anchors_tensor").data();
      in.anchor_stride = to_size(ashape[1]);
      in.anchor_offset = ashape[1] == 5 ? 1 : 0;
      in.scores = values(scores_at, f + "scores_tensor").data();
      in.columns = to_size(columns);
      in.offsets = values(offsets_at, f + "offsets_tensor").data();
      in.shared_offsets = oshape[1] == 4 && columns != 1;
      in.rows = to_size(rows);
      in.legacy_plus_one = d.anchored.legacy_plus_one;
      detail::decode_anchored(in, cols, floors, candidates);
      needs_tensor_size = normalize_at >= 0;
      break;
    }
    case DetectionFormat::kDirect: {
      const std::string f = "detection.direct_output.";
      const auto bshape = detail::shape_of_rank(tensor_at(tensors, boxes_at), 2, f + "boxes_tensor", "[N, 4]");
      const auto sshape = detail::shape_of_rank(tensor_at(tensors, scores_at), 1, f + "scores_tensor", "[N]");
      const auto cshape = detail::shape_of_rank(tensor_at(tensors, classes_at), 1, f + "classes_tensor", "[N]");
      if (bshape[1] != 4 || sshape[0] != bshape[0] || cshape[0] != bshape[0]) {
        throw_invalid_argument(f + "boxes_tensor", "expected boxes [N, 4], scores [N] and classes [N], got " +
                                                       shape_to_string(bshape) + ", " + shape_to_string(sshape) +
                                                       ", " + shape_to_string(cshape));
      }
      detail::DirectInputs in{};
      in.rows = to_size(bshape[0]);
      if (num_detections_at >= 0) {
        const Tensor& count = tensor_at(tensors, num_detections_at);
        if (count.element_count() != 1) {
          throw_invalid_argument(f + "num_detections_tensor", "expected one value, got " + shape_to_string(count.shape));
        }
        const double n = count.value_as_double(0);
        in.rows = !(n > 0.0) ? 0 : (n < static_cast<double>(in.rows) ? static_cast<std::size_t>(n) : in.rows);
      }
      in.boxes = values(boxes_at, f + "boxes_tensor").data();
      in.scores = values(scores_at, f + "scores_tensor").data();
      in.classes = values(classes_at, f + "classes_tensor").data();
      detail::decode_direct(in, direct_classes, floors, candidates);
      fx = transform.tensor_width;
      fy = transform.tensor_height;
      break;
    }
    case DetectionFormat::kYolo: {
      std::size_t classes_seen = 0;
      for (std::size_t h = 0; h < heads_at.size(); ++h) {
        const YoloHead& head = d.yolo.heads[h];
        const std::string field = "detection.yolo_output.output_tensors[" + std::to_string(h) + "].output_tensor";
        const auto shape = detail::shape_of_rank(tensor_at(tensors, heads_at[h]), 3, field, "[anchors x (5 + classes), H, W]");
        const std::size_t anchor_count = head.anchors.size() / 2;
        const auto channels = to_size(shape[0]);
        if (channels % anchor_count != 0 || channels / anchor_count < 5) {
          throw_invalid_argument(field, "channels " + std::to_string(channels) + " are not " +
                                            std::to_string(anchor_count) + " anchors x (5 + classes)");
        }
        const std::size_t network_classes = channels / anchor_count - 5;
        if (h > 0 && network_classes != classes_seen) {
          throw_invalid_argument(field, "every head must have the same number of classes");
        }
        classes_seen = network_classes;
        auto& cols = s.columns;
        const bool objectness_only = network_classes == 0 && labels == 1 &&
                                     (config.class_indices.empty() || config.class_indices[0] == 0);
        if (objectness_only) {
          cols.assign(1, -1);  // the objectness is the score of the one label, its class 0
        } else if (config.class_indices.empty()) {
          if (network_classes == labels) {
            cols.resize(labels);
            for (std::size_t k = 0; k < labels; ++k) cols[k] = static_cast<int64_t>(k);
          } else {
            throw_invalid_argument(field, "the network has " + std::to_string(network_classes) +
                                              " classes but the spec has " + std::to_string(labels) +
                                              " labels (class_indices maps them otherwise)");
          }
        } else {
          cols = config.class_indices;
          for (std::size_t k = 0; k < labels; ++k) {
            if (to_size(cols[k]) >= network_classes) {
              throw_invalid_argument("class_indices[" + std::to_string(k) + "]",
                                     "class " + std::to_string(cols[k]) + " is beyond the " +
                                         std::to_string(network_classes) + " classes of " + head.output_tensor);
            }
          }
        }
        detail::YoloHeadInputs in{};
        in.data = values(heads_at[h], field).data();
        in.anchors = head.anchors.data();
        in.anchor_count = anchor_count;
        in.classes = network_classes;
        in.height = to_size(shape[1]);
        in.width = to_size(shape[2]);
        detail::decode_yolo(in, d.yolo.class_activation, cols, floors, s.doubles, candidates);
      }
      fx = transform.tensor_width;
      fy = transform.tensor_height;
      break;
    }
  }
  if (normalize_at >= 0) {
    const Tensor& info = tensor_at(tensors, normalize_at);
    const std::size_t n = info.element_count();
    if (n < 2 || n > 3) {
      throw_invalid_argument("detection.normalize_wrt_tensor",
                             "expected [height, width] or [height, width, scale], got " + shape_to_string(info.shape));
    }
    const double height = info.value_as_double(0), width = info.value_as_double(1);
    const double scale = n == 3 ? info.value_as_double(2) : 1.0;
    if (!(height > 0.0 && width > 0.0 && scale > 0.0 && std::isfinite(height) && std::isfinite(width) &&
          std::isfinite(scale))) {
      throw_invalid_argument("detection.normalize_wrt_tensor", "height, width and scale must be positive");
    }
    fx = scale / width * transform.tensor_width;
    fy = scale / height * transform.tensor_height;
  }
  check_transform(transform, needs_tensor_size);

  // Map to normalised image coordinates, clamp to the region the network saw, drop what is left empty.
  double lo_x = 0.0, hi_x = 1.0, lo_y = 0.0, hi_y = 1.0;
  if (transform.crop_width > 0.0 && transform.crop_height > 0.0) {
    lo_x = std::max(0.0, transform.crop_x / transform.image_width);
    hi_x = std::min(1.0, (transform.crop_x + transform.crop_width) / transform.image_width);
    lo_y = std::max(0.0, transform.crop_y / transform.image_height);
    hi_y = std::min(1.0, (transform.crop_y + transform.crop_height) / transform.image_height);
  }
  auto& boxes_out = s.boxes;
  auto& scores_out = s.scores;
  auto& labels_out = s.labels;
  boxes_out.clear();
  scores_out.clear();
  labels_out.clear();
  for (const detail::Candidate& c : candidates) {
    double x1 = transform.to_image_x(std::min(c.x1, c.x2) * fx);
    double x2 = transform.to_image_x(std::max(c.x1, c.x2) * fx);
    double y1 = transform.to_image_y(std::min(c.y1, c.y2) * fy);
    double y2 = transform.to_image_y(std::max(c.y1, c.y2) * fy);
    if (!(std::isfinite(x1) && std::isfinite(x2) && std::isfinite(y1) && std::isfinite(y2))) continue;
    x1 = std::min(hi_x, std::max(lo_x, x1));
    x2 = std::min(hi_x, std::max(lo_x, x2));
    y1 = std::min(hi_y, std::max(lo_y, y1));
    y2 = std::min(hi_y, std::max(lo_y, y2));
    if (!(x2 > x1 && y2 > y1)) continue;
    boxes_out.push_back({x1, y1, x2, y2});
    scores_out.push_back(c.score);
    labels_out.push_back(c.label);
  }
  nms(boxes_out.data(), scores_out.data(), d.nms_class_agnostic ? nullptr : labels_out.data(), boxes_out.size(),
      d.nms_threshold, s.nms, s.kept);

  for (uint32_t i : s.kept) {
    const int32_t label = labels_out[i];
    const bool predicted = scores_out[i] >= thresholds[static_cast<std::size_t>(label)];
    if (!predicted && !show_discarded) continue;
    auto& out = predicted ? result.predicted : result.discarded;
    if (out.size() >= cap) continue;
    Prediction p = make_prediction(config.spec, thresholds, label, scores_out[i]);
    p.bbox = {boxes_out[i].x1, boxes_out[i].y1, boxes_out[i].x2, boxes_out[i].y2};
    out.push_back(std::move(p));
  }
  int region = 0;
  for (Prediction& p : result.predicted) p.region_id = ++region;
  for (Prediction& p : result.discarded) p.region_id = ++region;
}

}  // namespace sightd
