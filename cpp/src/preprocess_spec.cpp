// Checking a preprocessing spec and planning the geometry of one image input (docs/preprocessing.md gives
// the formulas and roundings implemented here; keep both in step).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <string>

#include "sightd/error.hpp"
#include "sightd/preprocess.hpp"

namespace sightd {

namespace {

constexpr int kMaxTensorSide = 16384;

int round_half_up(double value) { return static_cast<int>(std::floor(value + 0.5)); }

std::string image_field(const ImageInputSpec& spec, std::size_t position, const std::string& name) {
  const int index = spec.input_index >= 0 ? spec.input_index : static_cast<int>(position);
  return "inputs[" + std::to_string(index) + "].image." + name;
}

void check_per_channel(const std::vector<float>& values, int channels, bool positive,
                       const std::string& field) {
  if (values.empty()) return;
  if (static_cast<int>(values.size()) != channels) {
    throw_invalid_argument(field, "needs " + std::to_string(channels) + " values (one per channel), got " +
                                      std::to_string(values.size()));
  }
  for (float v : values) {
    if (!std::isfinite(v)) throw_invalid_argument(field, "values must be finite");
    if (positive && !(v > 0.0f)) throw_invalid_argument(field, "values must be positive");
  }
}

void validate_image_input(const ImageInputSpec& spec, std::size_t position) {
  const auto field = [&](const std::string& name) { return image_field(spec, position, name); };
  const int channels = spec.channel_count();
  if (!std::isfinite(spec.pixel_scaling) || spec.pixel_scaling <= 0.0) {
    throw_invalid_argument(field("pixel_scaling"), "must be a positive number");
  }
  const auto side_ok = [](int v) { return v >= 1 && v <= kMaxTensorSide; };
  if (spec.resize_type == ResizeType::kNetwork) {
    if (spec.target_width != 0 || !side_ok(spec.target_height)) {
      throw_invalid_argument(field("target_size"),
                             "NETWORK resizing takes one size, the shorter side (1.." +
                                 std::to_string(kMaxTensorSide) + ")");
    }
  } else if (!side_ok(spec.target_width) || !side_ok(spec.target_height)) {
    throw_invalid_argument(field("target_size"),
                           "must be WIDTHxHEIGHT with sides in 1.." + std::to_string(kMaxTensorSide));
  }
  if (spec.mean_file) {
    const MeanImage& mean = *spec.mean_file;
    if (mean.channels != channels) {
      throw_invalid_argument(field("mean_file"), "mean has " + std::to_string(mean.channels) +
                                                     " channels; color_channels needs " +
                                                     std::to_string(channels));
    }
    if (mean.height < 1 || mean.width < 1 ||
        mean.data.size() != static_cast<std::size_t>(mean.channels) * static_cast<std::size_t>(mean.height) *
                                static_cast<std::size_t>(mean.width)) {
      throw_invalid_argument(field("mean_file"), "mean data does not match its shape");
    }
    for (float v : mean.data) {
      if (!std::isfinite(v)) throw_invalid_argument(field("mean_file"), "mean values must be finite");
    }
  }
  check_per_channel(spec.mean, channels, false, field("mean"));
  check_per_channel(spec.std, channels, true, field("std"));
  if (!(spec.crop_ratio > 0.0 && spec.crop_ratio <= 1.0)) {
    throw_invalid_argument(field("crop_ratio"), "must be in (0, 1]");
  }
  if (spec.crop_ratio != 1.0 && spec.resize_type != ResizeType::kCrop) {
    throw_invalid_argument(field("crop_ratio"), "only applies to CROP resizing");
  }
  if (std::max(spec.target_width, spec.target_height) / spec.crop_ratio > kMaxTensorSide) {
    throw_invalid_argument(field("crop_ratio"), "too small: the scaled image would exceed " +
                                                    std::to_string(kMaxTensorSide) + " pixels");
  }
  if (!spec.pad_value.empty()) {
    if (spec.pad_value.size() != 1 && static_cast<int>(spec.pad_value.size()) != channels) {
      throw_invalid_argument(field("pad_value"), "needs one value or " + std::to_string(channels));
    }
    for (float v : spec.pad_value) {
      if (!(v >= 0.0f && v <= 255.0f)) throw_invalid_argument(field("pad_value"), "values must be in 0..255");
    }
  }
  if (spec.max_size < 0 || spec.max_size > kMaxTensorSide) {
    throw_invalid_argument(field("max_size"), "must be in 0.." + std::to_string(kMaxTensorSide));
  }
  if (spec.antialias && spec.interpolation != Interpolation::kLinear &&
      spec.interpolation != Interpolation::kCubic) {
    throw_invalid_argument(field("antialias"), "only applies to LINEAR and CUBIC interpolation");
  }
  if (spec.stride < 0 || spec.stride > 4096) throw_invalid_argument(field("stride"), "must be in 0..4096");
  if (spec.resize_type != ResizeType::kNetwork && (spec.max_size != 0 || spec.stride != 0)) {
    throw_invalid_argument(field(spec.max_size != 0 ? "max_size" : "stride"),
                           "only applies to NETWORK resizing");
  }
}

}  // namespace

void validate_preprocessing(const PreprocessingSpec& spec) {
  if (spec.image_inputs.empty()) throw_invalid_argument("inputs", "needs at least one image input");
  std::set<std::string> names;
  const auto check_name = [&names](const std::string& name, const std::string& field) {
    if (name.empty()) throw_invalid_argument(field, "must not be empty");
    if (!names.insert(name).second) throw_invalid_argument(field, "tensor '" + name + "' is fed twice");
  };
  for (std::size_t i = 0; i < spec.image_inputs.size(); ++i) {
    const ImageInputSpec& input = spec.image_inputs[i];
    const int index = input.input_index >= 0 ? input.input_index : static_cast<int>(i);
    check_name(input.tensor_name, "inputs[" + std::to_string(index) + "].tensor_name");
    validate_image_input(input, i);
  }
  for (std::size_t i = 0; i < spec.constant_inputs.size(); ++i) {
    const ConstantInputSpec& constant = spec.constant_inputs[i];
    const int index =
        constant.input_index >= 0 ? constant.input_index : static_cast<int>(spec.image_inputs.size() + i);
    const std::string prefix = "inputs[" + std::to_string(index) + "]";
    check_name(constant.tensor_name, prefix + ".tensor_name");
    std::size_t count = 1;
    if (constant.shape.size() > 8) {
      throw_invalid_argument(prefix + ".constant.shape", "has more than 8 dimensions");
    }
    for (int64_t d : constant.shape) {
      if (d < 1 || d > 1'000'000) {
        throw_invalid_argument(prefix + ".constant.shape", "dimensions must be 1..1000000");
      }
      count *= static_cast<std::size_t>(d);
      if (count > 1'000'000) throw_invalid_argument(prefix + ".constant.shape", "more than 1000000 elements");
    }
    if (constant.data.size() != count) {
      throw_invalid_argument(prefix + ".constant.data", "holds " + std::to_string(constant.data.size()) +
                                                           " values; the shape needs " +
                                                           std::to_string(count));
    }
    for (std::size_t k = 0; k < constant.data.size(); ++k) {
      const ConstantValue& value = constant.data[k];
      const std::string field = prefix + ".constant.data[" + std::to_string(k) + "]";
      if (value.tensor_name.empty()) {
        if (!std::isfinite(value.number)) throw_invalid_argument(field, "must be finite");
        continue;
      }
      const auto named = [&](const ImageInputSpec& s) { return s.tensor_name == value.tensor_name; };
      const bool known = std::any_of(spec.image_inputs.begin(), spec.image_inputs.end(), named);
      if (!known) throw_invalid_argument(field, "'" + value.tensor_name + "' is not an image input");
      if (value.dimension < 0 || value.dimension > 2) {
        throw_invalid_argument(field, "an image tensor has dimensions 0, 1 and 2 (batch dimension excluded)");
      }
    }
  }
}

ResizePlan plan_resize(const ImageInputSpec& spec, int src_width, int src_height) {
  if (src_width < 1 || src_height < 1) {
    throw Error(ErrorCode::kInvalidImage, "image of " + std::to_string(src_width) + "x" +
                                              std::to_string(src_height) + " pixels cannot be resized");
  }
  const int64_t w = src_width;
  const int64_t h = src_height;
  const int64_t tw = spec.target_width;
  const int64_t th = spec.target_height;
  ResizePlan plan;
  switch (spec.resize_type) {
    case ResizeType::kSquash:
      plan.resized_width = spec.target_width;
      plan.resized_height = spec.target_height;
      plan.tensor_width = spec.target_width;
      plan.tensor_height = spec.target_height;
      break;
    case ResizeType::kCrop: {
      // The side with the larger scale decides (ties: the width): it becomes round(target / crop_ratio); the
      // other side follows the aspect ratio, rounded down (torchvision's Resize); both at least the target.
      // The following side is capped at kMaxTensorSide: a 1-pixel-wide image must not ask for gigabytes.
      const auto scaled = [&spec](int64_t target) {
        const int64_t covering = round_half_up(static_cast<double>(target) / spec.crop_ratio);
        return static_cast<int>(std::max(target, covering));
      };
      const auto follow = [](int64_t side, int64_t decided, int64_t decided_source, int64_t target) {
        return static_cast<int>(std::clamp<int64_t>(side * decided / decided_source, target, kMaxTensorSide));
      };
      if (tw * h >= th * w) {
        plan.resized_width = scaled(tw);
        plan.resized_height = follow(h, plan.resized_width, w, th);
      } else {
        plan.resized_height = scaled(th);
        plan.resized_width = follow(w, plan.resized_height, h, tw);
      }
      plan.offset_x = -((plan.resized_width - spec.target_width) / 2);
      plan.offset_y = -((plan.resized_height - spec.target_height) / 2);
      plan.tensor_width = spec.target_width;
      plan.tensor_height = spec.target_height;
      break;
    }
    case ResizeType::kLetterbox: {
      if (tw * h <= th * w) {  // the width is the tighter side
        plan.resized_width = spec.target_width;
        // Darknet's letterbox_image: the fitted side is rounded down (integer division).
        const int following = static_cast<int>(static_cast<int64_t>(h) * tw / w);
        plan.resized_height = std::clamp(following, 1, spec.target_height);
      } else {
        plan.resized_height = spec.target_height;
        const int following = static_cast<int>(static_cast<int64_t>(w) * th / h);
        plan.resized_width = std::clamp(following, 1, spec.target_width);
      }
      if (spec.letterbox_align == LetterboxAlign::kCenter) {
        plan.offset_x = (spec.target_width - plan.resized_width) / 2;
        plan.offset_y = (spec.target_height - plan.resized_height) / 2;
      }
      plan.tensor_width = spec.target_width;
      plan.tensor_height = spec.target_height;
      break;
    }
    case ResizeType::kNetwork: {
      const double shorter = static_cast<double>(std::min(w, h));
      const double longer = static_cast<double>(std::max(w, h));
      double scale = spec.target_height / shorter;
      // Detectron's rule: the cap applies when the rounded longer side would exceed it.
      if (spec.max_size > 0 && round_half_up(longer * scale) > spec.max_size) scale = spec.max_size / longer;
      plan.resized_width = std::clamp(round_half_up(static_cast<double>(w) * scale), 1, kMaxTensorSide);
      plan.resized_height = std::clamp(round_half_up(static_cast<double>(h) * scale), 1, kMaxTensorSide);
      plan.tensor_width = plan.resized_width;
      plan.tensor_height = plan.resized_height;
      if (spec.stride > 1) {
        plan.tensor_width = (plan.resized_width + spec.stride - 1) / spec.stride * spec.stride;
        plan.tensor_height = (plan.resized_height + spec.stride - 1) / spec.stride * spec.stride;
      }
      break;
    }
  }
  return plan;
}

std::vector<int64_t> image_tensor_shape(const ImageInputSpec& spec, const ResizePlan& plan) {
  const int64_t c = spec.channel_count();
  if (spec.dimension_order == DimensionOrder::kNCHW) return {c, plan.tensor_height, plan.tensor_width};
  return {plan.tensor_height, plan.tensor_width, c};
}

std::optional<cv::Scalar> neutral_colour(const ImageInputSpec& spec) {
  if (!spec.mean_file && spec.mean.empty()) return std::nullopt;
  const int channels = spec.channel_count();
  double pixel[3] = {0.0, 0.0, 0.0};
  for (int c = 0; c < channels; ++c) {
    double mean = spec.mean.empty() ? 0.0 : static_cast<double>(spec.mean[c]);
    if (spec.mean_file) {
      const MeanImage& file = *spec.mean_file;
      const std::size_t plane = static_cast<std::size_t>(file.height) * static_cast<std::size_t>(file.width);
      double sum = 0.0;
      for (std::size_t i = 0; i < plane; ++i) sum += static_cast<double>(file.data[c * plane + i]);
      mean += sum / static_cast<double>(plane);
    }
    pixel[c] = std::clamp(mean * 255.0 / spec.pixel_scaling, 0.0, 255.0);
  }
  switch (spec.color_channels) {
    case ColorChannels::kBGR: return cv::Scalar(pixel[0], pixel[1], pixel[2]);
    case ColorChannels::kRGB: return cv::Scalar(pixel[2], pixel[1], pixel[0]);
    case ColorChannels::kL: return cv::Scalar(pixel[0], pixel[0], pixel[0]);
  }
  return std::nullopt;
}

}  // namespace sightd
