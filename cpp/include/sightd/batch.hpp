// Decoding and preprocessing a batch of encoded images into the input tensors of a network: the first half
// of the hot path, usable alone (benchmarks, raw network inference) and by the Pipeline.
//
// For each image, in parallel on the pool: read the header (format, size, orientation), check the pixel
// limit, validate the roi, pick a reduced JPEG decoding scale when allowed, decode, apply the roi, plan the
// resize of every image input. Images are then grouped by input shape (only NETWORK resizing and background
// trimming make shapes differ); each group gets one tensor per image input, and every image is resized and
// normalised straight into its slot of its group's tensor (in parallel). Constant inputs are filled per
// image (a batch dimension first, always).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sightd/error.hpp"
#include "sightd/image.hpp"
#include "sightd/preprocess.hpp"
#include "sightd/roi.hpp"
#include "sightd/tensor.hpp"
#include "sightd/thread_pool.hpp"
#include "sightd/transform.hpp"

namespace sightd {

struct ImageRequest {
  const uint8_t* data = nullptr;  // encoded bytes, borrowed for the duration of the call
  std::size_t size = 0;
  Roi roi;
};

struct BatchOptions {
  DecodeOptions decode;
  // Allow libjpeg's DCT-scaled decoding when the image is much larger than the network needs. Faster on
  // large JPEGs; results differ slightly from full-resolution decoding (docs/preprocessing.md).
  bool reduced_decoding = false;
  std::shared_ptr<ThreadPool> pool;  // null: ThreadPool::shared()
};

struct PreparedImage {
  bool ok = false;
  // When !ok: what went wrong with this image only.
  ErrorCode error_code = ErrorCode::kInternal;
  std::string error_field;
  std::string error_message;
  std::vector<Transform> transforms;  // one per image input, in the spec's order
  std::size_t group = 0;              // index into PreparedBatch::groups
  std::size_t row = 0;                // the image's row in its group's tensors
};

struct PreparedGroup {
  std::vector<std::size_t> images;  // indices into the request list, in row order
  // One tensor per image input then per constant input, in the spec's order, named by tensor_name; the first
  // dimension is the group's batch size.
  std::vector<std::pair<std::string, Tensor>> feeds;
};

struct PreparedBatch {
  std::vector<PreparedImage> images;  // parallel to the requests
  std::vector<PreparedGroup> groups;
};

class BatchPreprocessor {
 public:
  // Validates the spec (Error(kInvalidArgument) naming the field) and prepares its image inputs.
  BatchPreprocessor(PreprocessingSpec spec, BatchOptions options);
  ~BatchPreprocessor();
  BatchPreprocessor(const BatchPreprocessor&) = delete;
  BatchPreprocessor& operator=(const BatchPreprocessor&) = delete;

  const PreprocessingSpec& spec() const noexcept;

  // Thread-safe; never throws for a bad image (it is marked !ok and left out of every group).
  PreparedBatch prepare(const std::vector<ImageRequest>& images) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sightd
