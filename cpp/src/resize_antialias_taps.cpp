// The taps of Pillow's convolution resampling (libImaging/Resample.c, precompute_coeffs and
// normalize_coeffs_8bpc): the same filters, bounds and normalised weights in double, then Pillow's 8-bit fixed
// point. Every operation is Pillow's, in Pillow's order, so that the coefficients come out identical.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "resize_antialias.hpp"
#include "sightd/error.hpp"

namespace sightd::detail {

namespace {

constexpr int32_t kSplit = 1 << kSplitBits;

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

}  // namespace

AxisTaps make_axis_taps(int in_size, int out_size, ResampleFilter filter) {
  if (in_size < 1 || out_size < 1) throw Error(ErrorCode::kInternal, "empty resampling axis");
  double (*const function)(double) = filter == ResampleFilter::kBilinear ? bilinear_filter : bicubic_filter;
  const double filter_support = filter == ResampleFilter::kBilinear ? 1.0 : 2.0;
  // Pillow's precompute_coeffs with the box (0, in_size).
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = filter_support * filterscale;
  const int ksize = static_cast<int>(std::ceil(support)) * 2 + 1;

  AxisTaps taps;
  taps.in_size = in_size;
  taps.out_size = out_size;
  taps.stride = ksize + 1;  // even, for the SIMD passes' pairs
  const std::size_t total = static_cast<std::size_t>(out_size) * static_cast<std::size_t>(taps.stride);
  taps.start.resize(static_cast<std::size_t>(out_size));
  taps.count.resize(static_cast<std::size_t>(out_size));
  taps.coefficient.assign(total, 0);
  taps.pairs.assign(total / 2 * kPairValues, 0);
  std::vector<double> weights(static_cast<std::size_t>(ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double w = function((x + xmin - center + 0.5) * ss);
      weights[static_cast<std::size_t>(x)] = w;
      ww += w;
    }
    const std::size_t at = static_cast<std::size_t>(xx) * static_cast<std::size_t>(taps.stride);
    for (int x = 0; x < xmax; ++x) {
      double k = weights[static_cast<std::size_t>(x)];
      if (ww != 0.0) k /= ww;
      const double scaled = k * (1 << kPrecisionBits);
      const int32_t fixed = static_cast<int32_t>(k < 0 ? -0.5 + scaled : 0.5 + scaled);
      const int32_t low = ((fixed % kSplit) + kSplit) % kSplit;
      const int32_t high = (fixed - low) / kSplit;
      if (high < std::numeric_limits<int16_t>::min() || high > std::numeric_limits<int16_t>::max()) {
        throw Error(ErrorCode::kInternal, "resampling coefficient out of range");
      }
      taps.coefficient[at + static_cast<std::size_t>(x)] = fixed;
      int16_t* pair = taps.pairs.data() + (at + static_cast<std::size_t>(x)) / 2 * kPairValues + x % 2;
      for (int lane = 0; lane < kPairValues / 2; lane += 2) {
        pair[lane] = static_cast<int16_t>(high);
        pair[kPairValues / 2 + lane] = static_cast<int16_t>(low);
      }
    }
    taps.start[static_cast<std::size_t>(xx)] = xmin;
    taps.count[static_cast<std::size_t>(xx)] = xmax;
  }
  return taps;
}

AntialiasPlan make_antialias_plan(cv::Size source, cv::Size target, ResampleFilter filter) {
  AntialiasPlan plan;
  plan.horizontal = make_axis_taps(source.width, target.width, filter);
  plan.vertical = make_axis_taps(source.height, target.height, filter);
  return plan;
}

}  // namespace sightd::detail
