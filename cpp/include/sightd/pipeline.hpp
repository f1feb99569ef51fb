// The coarse entry point of the hot path: a batch of encoded images (with their rois) goes in; the
// network's output tensors for each image plus each image's transforms come out, with no Python touching
// pixels in between. The BatchPreprocessor prepares same-shape groups; the session runs once per group
// (in chunks when the model has a fixed batch size, once per image when batched_output is false).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sightd/batch.hpp"
#include "sightd/engine.hpp"
#include "sightd/error.hpp"
#include "sightd/tensor.hpp"
#include "sightd/thread_pool.hpp"
#include "sightd/transform.hpp"

namespace sightd {

struct ImageOutcome {
  bool ok = false;
  // When !ok: what went wrong with this image only (the others of the batch are unaffected).
  ErrorCode error_code = ErrorCode::kInternal;
  std::string error_field;
  std::string error_message;
  std::vector<Transform> transforms;  // one per image input of the preprocessing, in its order
  // In the order of Pipeline::output_names(). With batched_output the batch dimension is removed (a view
  // into the batch's output); without it, the tensors are the network's outputs as they are.
  std::vector<Tensor> outputs;
  // One per constant input of the preprocessing, in its order: this image's values as the batch preparation
  // made them (float32, without the batch dimension), for post-processing that reads an input such as
  // im_info (detection.normalize_wrt_tensor).
  std::vector<Tensor> constants;
};

// Wall-clock seconds (std::chrono::steady_clock) one batch spent in each stage, for the service's metrics.
// Measured on the calling thread around each stage as a whole: the parallel work inside a stage (decoding
// on the pool, ONNX Runtime's intra-op threads) counts once, as the time the caller waited for it.
struct StageTimes {
  double decode_preprocess = 0.0;  // BatchPreprocessor::prepare: decode, roi, resize, normalise, group
  double inference = 0.0;          // every session run of the batch (groups, chunks), feeds and outputs included
  double postprocess = 0.0;        // Recognizer only: box decoding, NMS, label predictions
};

class Pipeline {
 public:
  // Checks the spec against the session (every tensor named exists with a compatible element type and
  // rank, fixed dimensions match the target size, constants fit) and throws Error(kInvalidArgument) naming
  // the field otherwise. `output_names` empty means all the network's outputs.
  Pipeline(std::shared_ptr<const Session> session, PreprocessingSpec spec, std::vector<std::string> output_names,
           BatchOptions options);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  const PreprocessingSpec& spec() const noexcept;
  const Session& session() const noexcept;
  const std::vector<std::string>& output_names() const noexcept;
  // The pool that decodes and preprocesses (the options' pool, else ThreadPool::shared()).
  const std::shared_ptr<ThreadPool>& pool() const noexcept;
  // Largest batch one run takes: the model's fixed batch dimension, 1 without batched_output, else 0
  // (unlimited).
  int max_batch() const noexcept;

  // Thread-safe and never throws for bad input: a bad image fails alone (see ImageOutcome), a failed session
  // run fails the images of that run (kEngine). `times`, when given, receives the stages' durations
  // (decode_preprocess and inference; postprocess is left as it is).
  std::vector<ImageOutcome> run(const std::vector<ImageRequest>& images, StageTimes* times = nullptr) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sightd
