// Internal to the core: Pillow's convolution resampling of 8-bit BGR images (docs/preprocessing.md,
// "Antialiasing"), the resize behind the `antialias` extension.
#pragma once

#include <cstdint>
#include <vector>

#include <opencv2/core.hpp>

namespace sightd::detail {

enum class ResampleFilter { kBilinear, kBicubic };

// Pillow's fixed point for 8-bit images: coefficients scaled by 2^22 (its PRECISION_BITS); the passes add
// (1 << 21) + sum(pixel * coefficient) in int32, shift right by 22 and clip to 0..255.
constexpr int kPrecisionBits = 22;
// Each coefficient is also split as hi * 2^11 + lo (0 <= lo < 2^11), two 16-bit numbers.
constexpr int kSplitBits = 11;
constexpr int kPairValues = 16;

// The taps of one axis, in Pillow's 8-bit fixed point: output i reads `count[i]` source pixels from
// `start[i]` with the coefficients `coefficient[i * stride + t]` (weight * 2^22, rounded half away from zero).
// Every output's taps are padded with zeros up to `stride`, an even number. `pairs` holds the same
// coefficients as the SIMD passes read them, split as hi * 2^11 + lo: for output i and taps 2j, 2j + 1, from
// (i * stride / 2 + j) * kPairValues, (hi[2j], hi[2j+1]) four times then (lo[2j], lo[2j+1]) four times.
struct AxisTaps {
  int in_size = 0;
  int out_size = 0;
  int stride = 0;  // even, >= every count
  std::vector<int> start;
  std::vector<int> count;
  std::vector<int32_t> coefficient;
  std::vector<int16_t> pairs;
};

AxisTaps make_axis_taps(int in_size, int out_size, ResampleFilter filter);

// Both axes of one (source size, target size) pair, computed once and shared between threads.
struct AntialiasPlan {
  AxisTaps horizontal;
  AxisTaps vertical;
};

AntialiasPlan make_antialias_plan(cv::Size source, cv::Size target, ResampleFilter filter);

// Resizes `source` (CV_8UC3) into `destination` (CV_8UC3, already of the plan's target size; may be a view
// into a larger buffer), as Pillow 13's Image.resize does for 8-bit images, bit for bit: a horizontal pass over
// the source rows the vertical pass needs, rounded to 8 bits, then a vertical pass (the other way round when
// the height shrinks by more than twice as many pixels as the width). An axis whose size does not change is
// not resampled. Only `region` of the destination is computed (each output pixel is the same as in a whole
// resize): a crop's margins are never made.
void resize_antialias(const cv::Mat& source, cv::Mat& destination, const AntialiasPlan& plan,
                      const cv::Rect& region);

}  // namespace sightd::detail
