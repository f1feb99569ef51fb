// Network preprocessing as v0.7's `preprocessing` field describes it, plus documented extensions that real
// models need. The Python side (sightd.preprocessing) parses and validates the JSON into these structs; the
// core checks them again (Error(kInvalidArgument) naming the field) and applies them.
//
// Value of an element, for an image pixel p (0..255) of channel c after colour conversion:
//     v = (p * pixel_scaling / 255 - mean_file[c, y, x] - mean[c]) / std[c]
// (missing mean_file / mean terms are 0, a missing std is 1). FLOAT32 stores v; UINT8 stores v rounded and
// saturated to 0..255. Channel c counts in the order of color_channels (BGR, RGB or L).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "sightd/mean.hpp"
#include "sightd/tensor.hpp"
#include "sightd/transform.hpp"

namespace sightd {

enum class ResizeType {
  kSquash,     // resize to target_width x target_height, aspect ratio not kept
  kCrop,       // scale to cover the target (aspect kept), centre crop; crop_ratio < 1 keeps a central fraction
  kNetwork,    // shorter side to target_size, longer side capped by max_size, padded to a stride multiple
  kLetterbox,  // extension: scale to fit inside the target (aspect kept), pad with pad_value
};
enum class DataType { kFloat32, kUint8 };
enum class DimensionOrder { kNCHW, kNHWC };
enum class ColorChannels { kBGR, kRGB, kL };
enum class Interpolation { kLinear, kArea, kCubic, kNearest };
enum class LetterboxAlign { kCenter, kTopLeft };

struct ImageInputSpec {
  std::string tensor_name;
  // Position in v0.7's `inputs` list, for error field names ("inputs[2].image.mean"); -1: the position
  // among the spec's inputs counting image inputs first, then constants.
  int input_index = -1;
  ResizeType resize_type = ResizeType::kSquash;
  DataType data_type = DataType::kFloat32;
  DimensionOrder dimension_order = DimensionOrder::kNCHW;
  double pixel_scaling = 255.0;
  std::optional<MeanImage> mean_file;  // per pixel means are resized to the tensor's spatial size
  int target_width = 0;   // SQUASH, CROP, LETTERBOX: "WxH"
  int target_height = 0;  // NETWORK: the shorter side ("800"); target_width stays 0
  ColorChannels color_channels = ColorChannels::kBGR;
  // Extensions (documented in docs/preprocessing.md).
  std::vector<float> mean;          // per channel, in output units; empty = none
  std::vector<float> std;           // per channel divisor; empty = none
  double crop_ratio = 1.0;          // CROP: fraction of the scaled image kept (0.875: resize 256, crop 224)
  std::vector<float> pad_value;     // padding colour in pixel units 0..255, per channel or one value
  LetterboxAlign letterbox_align = LetterboxAlign::kCenter;
  int max_size = 0;                 // NETWORK: cap on the longer side after scaling (0 = none)
  int stride = 0;                   // NETWORK: pad width and height up to a multiple of it (0 = none)
  Interpolation interpolation = Interpolation::kLinear;
  // LINEAR and CUBIC only: when the resize shrinks an axis, Pillow's antialiased resampling (its BILINEAR or
  // BICUBIC filter, support widened by the shrink factor), bit for bit; cv::resize otherwise.
  bool antialias = false;

  int channel_count() const noexcept { return color_channels == ColorChannels::kL ? 1 : 3; }
};

// One element of a constant input's `data`: a number, or "<tensor>.<N>", dimension N of the named image
// input's per-image tensor (its shape without the batch dimension; NCHW: 0 = C, 1 = H, 2 = W).
struct ConstantValue {
  double number = 0.0;
  std::string tensor_name;  // empty: `number` is the value
  int dimension = -1;
};

struct ConstantInputSpec {
  std::string tensor_name;
  int input_index = -1;  // as ImageInputSpec::input_index
  std::vector<int64_t> shape;  // per image; batch preparation prepends a batch dimension (float32 elements)
  std::vector<ConstantValue> data;  // row-major, as many as the shape holds
};

struct PreprocessingSpec {
  std::vector<ImageInputSpec> image_inputs;  // at least one
  std::vector<ConstantInputSpec> constant_inputs;
  bool batched_output = true;  // false: the network takes one image per run
};

// Throws Error(kInvalidArgument) naming the field (e.g. "inputs[0].image.target_size") for an inconsistent
// spec: missing sizes, non-positive scaling, mean/std of the wrong length, a zero std, a constant whose data
// does not fill its shape or refers to an unknown tensor or dimension...
void validate_preprocessing(const PreprocessingSpec& spec);

// The geometry of one image input for a source (already roi-cropped) of src_width x src_height: the resized
// size, the offsets and the tensor size. Pure and cheap: the pipeline calls it on header sizes to plan
// shapes and the reduced decoding scale before decoding.
struct ResizePlan {
  int resized_width = 0;
  int resized_height = 0;
  int offset_x = 0;  // tensor = resized + offset (negative: cropped away; positive: padding)
  int offset_y = 0;
  int tensor_width = 0;
  int tensor_height = 0;
};
ResizePlan plan_resize(const ImageInputSpec& spec, int src_width, int src_height);

// Shape of one image's tensor, without the batch dimension: (C, H, W) or (H, W, C).
std::vector<int64_t> image_tensor_shape(const ImageInputSpec& spec, const ResizePlan& plan);

// Pixel colour (B, G, R, in 0..255) that preprocessing maps to zero: the mean colour of the spec, used to
// fill outside polygons. Empty when the spec has no mean.
std::optional<cv::Scalar> neutral_colour(const ImageInputSpec& spec);

// A prepared image input: the spec plus what can be computed once (per-channel coefficients, per-pixel mean
// resized to each tensor size on first use). Thread-safe.
class ImagePreprocessor {
 public:
  explicit ImagePreprocessor(ImageInputSpec spec);
  ~ImagePreprocessor();
  ImagePreprocessor(const ImagePreprocessor&) = delete;
  ImagePreprocessor& operator=(const ImagePreprocessor&) = delete;

  const ImageInputSpec& spec() const noexcept;

  // Resizes `source` (8-bit BGR, already roi-cropped) according to `plan` and writes the values straight
  // into `destination`, one image's slot of the batch tensor (element type and layout as the spec says).
  // Completes `transform`'s scale, offset and tensor size (its image size and crop come from the roi step).
  void write(const cv::Mat& source, const ResizePlan& plan, void* destination, Transform& transform) const;

  // write() in two steps, for batch preparation: it resizes while the decoded image is at hand (keeping only
  // the small resized image) and converts once the batch's tensors exist. `resize` returns the source itself
  // when it already has the resized size; with `antialias`, the margins a CROP cuts away are left unset (only
  // the part the tensor shows is computed). `convert` needs `transform`'s crop rectangle set.
  cv::Mat resize(const cv::Mat& source, const ResizePlan& plan) const;
  void convert(const cv::Mat& resized, const ResizePlan& plan, void* destination, Transform& transform) const;

 private:
  struct Impl;
  std::unique_ptr<const Impl> impl_;
};

}  // namespace sightd
