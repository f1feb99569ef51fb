// Internal pieces of the post-processing (not a contract between parts): tensor views, the decoders that
// turn raw detector outputs into scored candidates, and classification scoring.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sightd/postprocess.hpp"
#include "sightd/tensor.hpp"

namespace sightd::detail {

// The values of a tensor as float32: the tensor's own memory when it is float32, else a converted copy
// (float64 values are rounded to float32; integers and float16 convert exactly up to 2^24).
class FloatValues {
 public:
  void assign(const Tensor& tensor, const std::string& field);
  const float* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

 private:
  const float* data_ = nullptr;
  std::size_t size_ = 0;
  std::vector<float> storage_;
};

// The tensor's shape with leading dimensions of 1 dropped until it has `rank` dimensions; throws
// Error(kInvalidArgument, field) when that is not possible.
std::vector<int64_t> shape_of_rank(const Tensor& tensor, std::size_t rank, const std::string& field,
                                   const std::string& expected);

// One scored box before NMS, in the decoder's native coordinates (see docs/postprocessing.md).
struct Candidate {
  double x1, y1, x2, y2;
  double score;
  int32_t label;  // spec label index
};

// Per spec label: the lowest score that makes a candidate, min(discard_threshold, threshold).
struct LabelFloors {
  std::vector<double> floor;
  double lowest = 0.0;
};

struct AnchoredInputs {
  const float* anchors;  // rows of anchor_stride values, x1 y1 x2 y2 starting at anchor_offset
  std::size_t anchor_stride, anchor_offset;
  const float* scores;  // [rows, columns]
  std::size_t columns;
  const float* offsets;  // [rows, 4 x columns] or [rows, 4] (shared)
  bool shared_offsets;
  std::size_t rows;
  bool legacy_plus_one;
};
// label_columns[k]: the scores column of spec label k.
void decode_anchored(const AnchoredInputs& in, const std::vector<int64_t>& label_columns, const LabelFloors& floors,
                     std::vector<Candidate>& out);

struct DirectInputs {
  const float* boxes;  // [rows, 4] ymin xmin ymax xmax
  const float* scores;
  const float* classes;
  std::size_t rows;
};
// class_to_label: (network class value, spec label index), sorted by class value.
void decode_direct(const DirectInputs& in, const std::vector<std::pair<int64_t, int32_t>>& class_to_label,
                   const LabelFloors& floors, std::vector<Candidate>& out);

struct YoloHeadInputs {
  const float* data;  // [anchors x (5 + classes), height, width]
  const double* anchors;  // (width, height) pairs in grid units
  std::size_t anchor_count, classes, height, width;
};
// label_classes[k]: the network class of spec label k, or -1 for the objectness alone (no class channels).
void decode_yolo(const YoloHeadInputs& in, Activation class_activation, const std::vector<int64_t>& label_classes,
                 const LabelFloors& floors, std::vector<double>& scratch, std::vector<Candidate>& out);

// Classification/tagging scores: `values` (count network classes) through the activation, one score per spec
// label (label_classes[k] is its network class) into `scores`.
void classification_scores(const float* values, std::size_t count, Activation activation,
                           const std::vector<int64_t>& label_classes, std::vector<double>& scratch,
                           std::vector<double>& scores);

}  // namespace sightd::detail
