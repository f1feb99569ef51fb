// Post-processing: a network's output tensors for one image -> v0.7 label predictions.
//
// A PostProcessor is built once per spec output of a recognition version (the spec's `labels` output plus
// the version's `post_processings` entry for it): the configuration is validated, thresholds and the network
// class -> spec label map are resolved, and the names of the tensors it reads are fixed. process() then runs
// per image; it is const, thread-safe and keeps its scratch memory per thread. docs/postprocessing.md states
// every formula, default and rule implemented here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sightd/tensor.hpp"
#include "sightd/transform.hpp"

namespace sightd {

// --- configuration: the v0.7 spec output and post-processing, plus sightd's documented extensions ---------

enum class RoiType { kNone, kBbox };
enum class Activation { kNone, kSoftmax, kSigmoid };
enum class DetectionFormat { kAnchored, kDirect, kYolo };

struct SpecLabel {
  int64_t id = 0;
  std::string name;
};

// v0.7 spec `outputs[i].labels`.
struct LabelsSpec {
  RoiType roi = RoiType::kNone;
  bool exclusive = true;
  std::vector<SpecLabel> labels;
};

// `classification` (also tagging: the spec's `exclusive` tells them apart).
struct ClassificationOutput {
  std::string output_tensor;
  Activation activation = Activation::kNone;  // extension, for networks that output logits
};

// `detection.anchored_output` (Faster R-CNN style).
struct AnchoredOutput {
  std::string anchors_tensor;  // [N, 4] x1, y1, x2, y2 or Caffe's [N, 5] batch index, x1, y1, x2, y2
  std::string scores_tensor;   // [N, columns]
  std::string offsets_tensor;  // [N, 4 x columns] per-column (dx, dy, dw, dh), or [N, 4] shared by all columns
  bool legacy_plus_one = false;  // extension: widths are x2 - x1 + 1 (py-faster-rcnn), else x2 - x1
};

// `detection.direct_output` (TensorFlow Object Detection API style).
struct DirectOutput {
  std::string boxes_tensor;    // [N, 4] ymin, xmin, ymax, xmax
  std::string scores_tensor;   // [N]
  std::string classes_tensor;  // [N] class values (floats holding integers)
  std::string num_detections_tensor;  // extension, optional: only the first num_detections rows count
};

struct YoloHead {
  std::string output_tensor;    // [A x (5 + C), H, W]
  std::vector<double> anchors;  // A (width, height) pairs in grid units
};

// `detection.yolo_output`: one head (v0.7) or several (extension).
struct YoloOutput {
  std::vector<YoloHead> heads;
  Activation class_activation = Activation::kSoftmax;  // extension: kSigmoid for YOLOv3 heads
};

struct DetectionOutput {
  DetectionFormat format = DetectionFormat::kYolo;
  AnchoredOutput anchored;
  DirectOutput direct;
  YoloOutput yolo;
  double discard_threshold = 0.025;
  double nms_threshold = 0.3;
  std::string normalize_wrt_tensor;  // [H, W] or [H, W, scale]; empty: none
  bool nms_class_agnostic = false;   // extension
};

struct PostProcessingConfig {
  LabelsSpec spec;
  ClassificationOutput classification;  // used when spec.roi == kNone
  DetectionOutput detection;            // used when spec.roi == kBbox
  // One per spec label; empty: 0.025 (classification), 0.5 (tagging), 0.8 (detection).
  std::vector<double> thresholds;
  // Extension: the network class of each spec label, in spec label order; empty: the default map (see docs).
  std::vector<int64_t> class_indices;
};

// --- results ----------------------------------------------------------------------------------------------

struct BBox {
  double xmin = 0.0;  // normalised coordinates of the original image, origin top-left, in [0, 1]
  double ymin = 0.0;
  double xmax = 0.0;
  double ymax = 0.0;
};

struct Prediction {
  int label_index = 0;  // position of the label in the spec
  int64_t label_id = 0;
  std::string label_name;
  double score = 0.0;
  double threshold = 0.0;
  int region_id = 0;  // detections only: 1-based, predicted boxes first, then discarded ones
  BBox bbox;          // detections only
};

struct LabelsResult {
  bool has_roi = false;
  std::vector<Prediction> predicted;  // best first
  std::vector<Prediction> discarded;  // best first; empty unless show_discarded
};

// --- the prepared post-processor -----------------------------------------------------------------------

class PostProcessor {
 public:
  // Validates the configuration; throws Error(kInvalidArgument, field) with a field path relative to the
  // post-processing ("detection.nms_threshold", "thresholds[2]", "spec.labels[0].name").
  explicit PostProcessor(PostProcessingConfig config);
  ~PostProcessor();
  PostProcessor(const PostProcessor&) = delete;
  PostProcessor& operator=(const PostProcessor&) = delete;

  const PostProcessingConfig& config() const noexcept;
  // Thresholds with defaults resolved, one per spec label.
  const std::vector<double>& thresholds() const noexcept;
  // The tensors process() reads, without duplicates, in a fixed order. They are network outputs, except
  // detection.normalize_wrt_tensor, which usually names an input (v0.7's `im_info` constant): the caller passes
  // that tensor as it was fed to the network.
  const std::vector<std::string>& required_tensors() const noexcept;

  // One image. `tensors` holds the required tensors in required_tensors() order; each may keep a leading
  // batch dimension of 1. `transform` maps input tensor pixels to the original image (detections only).
  // max_predictions < 0: no cap; otherwise it caps predicted and discarded each. Throws
  // Error(kInvalidArgument, field) when a tensor does not fit the configuration; never reports a NaN or
  // infinite score or coordinate.
  LabelsResult process(const std::vector<Tensor>& tensors, const Transform& transform, bool show_discarded,
                       int max_predictions) const;
  // The same with the tensors looked up by name among `names` (extra tensors are ignored).
  LabelsResult process(const std::vector<std::string>& names, const std::vector<Tensor>& tensors,
                       const Transform& transform, bool show_discarded, int max_predictions) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sightd
