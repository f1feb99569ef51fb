// PostProcessor's private state, shared by its construction (postprocess_config.cpp: validation and
// resolution) and its per-image work (postprocess.cpp).
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "postprocess_internal.hpp"
#include "sightd/postprocess.hpp"

namespace sightd {

struct PostProcessor::Impl {
  PostProcessingConfig config;
  std::vector<double> thresholds;
  detail::LabelFloors floors;
  std::vector<std::string> required;
  // Positions in `required` of the tensors each role reads; -1 when unused.
  std::ptrdiff_t classification_at = -1;
  std::ptrdiff_t anchors_at = -1, scores_at = -1, offsets_at = -1;
  std::ptrdiff_t boxes_at = -1, classes_at = -1, num_detections_at = -1;
  std::ptrdiff_t normalize_at = -1;
  std::vector<std::ptrdiff_t> heads_at;
  // direct_output: (class value, spec label index) sorted by class value.
  std::vector<std::pair<int64_t, int32_t>> direct_classes;

  explicit Impl(PostProcessingConfig c);
  std::ptrdiff_t require(const std::string& name);

  void classify(const std::vector<Tensor>& tensors, bool show_discarded, std::size_t cap,
                LabelsResult& result) const;
  void detect(const std::vector<Tensor>& tensors, const Transform& transform, bool show_discarded,
              std::size_t cap, LabelsResult& result) const;
};

}  // namespace sightd
