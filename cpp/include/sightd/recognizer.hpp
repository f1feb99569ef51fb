// The serving hot path in one call: encoded images (with their rois) -> decode -> preprocess -> ONNX Runtime
// -> post-processing (box decoding, NMS) -> v0.7 label predictions per image, with no Python in between.
//
// A Recognizer is built once per recognition version: the network's Pipeline plus one PostProcessor per spec
// output, in spec order. Every tensor a post-processor reads must be an output the pipeline asks for or a
// constant input of its preprocessing (v0.7's im_info, which detection.normalize_wrt_tensor usually names):
// constants are handed over per image exactly as they were fed. This is checked at construction.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sightd/batch.hpp"
#include "sightd/error.hpp"
#include "sightd/pipeline.hpp"
#include "sightd/postprocess.hpp"

namespace sightd {

struct Recognition {
  bool ok = false;
  // When !ok: what went wrong with this image only. Post-processing errors (a tensor that does not fit the
  // configuration) have their field prefixed with "post_processings[i].".
  ErrorCode error_code = ErrorCode::kInternal;
  std::string error_field;
  std::string error_message;
  std::vector<LabelsResult> outputs;  // one per post-processor (spec output), in order
};

class Recognizer {
 public:
  // Throws Error(kInvalidArgument, "post_processings[i]") when post-processor i reads a tensor that is
  // neither an output of the pipeline nor a constant input of its preprocessing, or is null; and
  // Error(kInvalidArgument, "post_processings") when there is none.
  Recognizer(std::shared_ptr<const Pipeline> pipeline,
             std::vector<std::shared_ptr<const PostProcessor>> post_processors);
  ~Recognizer();
  Recognizer(const Recognizer&) = delete;
  Recognizer& operator=(const Recognizer&) = delete;

  const Pipeline& pipeline() const noexcept;
  std::size_t output_count() const noexcept;

  // Thread-safe; never throws for bad input: a bad image fails alone. Post-processing runs in parallel over
  // the images on the pipeline's pool. Detection boxes are mapped back through the transform of the first
  // image input. max_predictions < 0: no cap; otherwise it caps predicted and discarded each. `times`, when
  // given, receives the durations of the batch's three stages (see StageTimes).
  std::vector<Recognition> recognize(const std::vector<ImageRequest>& images, bool show_discarded,
                                     int max_predictions, StageTimes* times = nullptr) const;

 private:
  struct Impl;
  std::unique_ptr<const Impl> impl_;
};

}  // namespace sightd
