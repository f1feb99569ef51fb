// Writing one image into its slot of an input tensor: cv::resize (or Pillow's antialiased resampling,
// resize_antialias.cpp) into a buffer the size of the resized image (or straight into the slot when the values
// are the pixels themselves), then one pass of a row kernel (preprocess_kernels.cpp) that reorders the colour
// channels, scales, subtracts the means, divides by std and lays the values out. Every choice is made once
// per spec by picking the kernel.
#include <algorithm>
#include <optional>
#include <tuple>
#include <utility>

#include <opencv2/imgproc.hpp>

#include "lru_cache.hpp"
#include "preprocess_kernels.hpp"
#include "resize_antialias.hpp"
#include "sightd/error.hpp"
#include "sightd/preprocess.hpp"

namespace sightd {

namespace {

// NETWORK resizing gives one tensor size per image aspect: the per-pixel mean is kept for the last few.
constexpr std::size_t kMeanCacheEntries = 16;
// Antialiased resizing's taps, per (source size, resized size): photos of a few camera sizes come back often.
constexpr std::size_t kAntialiasCacheEntries = 16;

int cv_interpolation(Interpolation interpolation) {
  switch (interpolation) {
    case Interpolation::kLinear: return cv::INTER_LINEAR;
    case Interpolation::kArea: return cv::INTER_AREA;
    case Interpolation::kCubic: return cv::INTER_CUBIC;
    case Interpolation::kNearest: return cv::INTER_NEAREST;
  }
  return cv::INTER_LINEAR;
}

void check_plan(const ResizePlan& plan) {
  if (plan.resized_width < 1 || plan.resized_height < 1 || plan.tensor_width < 1 || plan.tensor_height < 1) {
    throw Error(ErrorCode::kInternal, "empty resize plan");
  }
}

void check_source(const cv::Mat& image) {
  if (image.empty() || image.type() != CV_8UC3) {
    throw Error(ErrorCode::kInternal, "preprocessing needs a non-empty 8-bit BGR image");
  }
}

// The part of the resized image that lands in the tensor (all of it but for CROP).
cv::Rect visible_part(const ResizePlan& plan) {
  const int x0 = std::max(0, -plan.offset_x);
  const int y0 = std::max(0, -plan.offset_y);
  const int x1 = std::min(plan.resized_width, plan.tensor_width - plan.offset_x);
  const int y1 = std::min(plan.resized_height, plan.tensor_height - plan.offset_y);
  return cv::Rect(x0, y0, std::max(0, x1 - x0), std::max(0, y1 - y0));
}

}  // namespace

struct ImagePreprocessor::Impl {
  ImageInputSpec spec;
  detail::Coefficients coefficients;
  detail::RowKernel kernel = nullptr;
  bool pixel_mean = false;
  float std_of[3] = {1.0f, 1.0f, 1.0f};
  int interpolation = cv::INTER_LINEAR;
  bool identity = false;     // the values are the resized pixels themselves: resize straight into the tensor
  bool swap_before = false;  // see detail::swaps_before
  float pad[3] = {0.0f, 0.0f, 0.0f};  // output value of a padding element (before a per-pixel mean)
  bool pad_subtracts_mean = false;
  std::optional<detail::ResampleFilter> antialias;  // set: Pillow's resampling when an axis shrinks

  // (width, height) -> the per-pixel mean at that tensor size
  detail::LruCache<std::pair<int, int>, std::vector<float>> mean_cache{kMeanCacheEntries};
  // (source width, height, resized width, height) -> antialiased resizing's taps
  detail::LruCache<std::tuple<int, int, int, int>, detail::AntialiasPlan> antialias_cache{
      kAntialiasCacheEntries};

  std::shared_ptr<const std::vector<float>> resized_mean(int width, int height) const;
  std::vector<float> mean_at_size(int width, int height) const;
  void fill_padding(const ResizePlan& plan, void* destination, const float* mean) const;
  // Resizes into `destination`, already of the resized size (a buffer, or a region of the tensor). Antialiased
  // resizing computes only the part the tensor shows; cv::resize, all of it.
  void resize_into(const cv::Mat& source, cv::Mat& destination, const ResizePlan& plan) const;
};

void ImagePreprocessor::Impl::resize_into(const cv::Mat& source, cv::Mat& destination,
                                          const ResizePlan& plan) const {
  const cv::Rect visible = visible_part(plan);
  if (antialias && (source.cols > destination.cols || source.rows > destination.rows)) {
    if (visible.empty()) return;
    const auto key = std::make_tuple(source.cols, source.rows, destination.cols, destination.rows);
    const auto taps = antialias_cache.get(
        key, [&] { return detail::make_antialias_plan(source.size(), destination.size(), *antialias); });
    detail::resize_antialias(source, destination, *taps, visible);
    return;
  }
  cv::resize(source, destination, destination.size(), 0, 0, interpolation);
}

std::shared_ptr<const std::vector<float>> ImagePreprocessor::Impl::resized_mean(int width, int height) const {
  return mean_cache.get(std::make_pair(width, height), [&] { return mean_at_size(width, height); });
}

// The per-pixel mean divided by std, resized to the tensor size and laid out as the tensor.
std::vector<float> ImagePreprocessor::Impl::mean_at_size(int width, int height) const {
  const MeanImage& mean = *spec.mean_file;
  const int channels = mean.channels;
  const std::size_t plane = static_cast<std::size_t>(width) * static_cast<std::size_t>(height);
  const std::size_t mean_plane = static_cast<std::size_t>(mean.height) * static_cast<std::size_t>(mean.width);
  std::vector<float> values(plane * static_cast<std::size_t>(channels));
  for (int c = 0; c < channels; ++c) {
    cv::Mat source(mean.height, mean.width, CV_32F, const_cast<float*>(mean.data.data()) + c * mean_plane);
    cv::Mat resized = source;
    if (mean.width != width || mean.height != height) {
      cv::resize(source, resized, cv::Size(width, height), 0, 0, cv::INTER_LINEAR);
    }
    const float inverse_std = 1.0f / std_of[c];
    for (int y = 0; y < height; ++y) {
      const float* row = resized.ptr<float>(y);
      for (int x = 0; x < width; ++x) {
        const std::size_t pixel = static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + x;
        const std::size_t at =
            spec.dimension_order == DimensionOrder::kNCHW ? c * plane + pixel : pixel * channels + c;
        values[at] = row[x] * inverse_std;
      }
    }
  }
  return values;
}

void ImagePreprocessor::Impl::fill_padding(const ResizePlan& plan, void* destination,
                                           const float* mean) const {
  const int tw = plan.tensor_width;
  const int th = plan.tensor_height;
  const int vx0 = std::max(0, plan.offset_x);
  const int vx1 = std::min(tw, plan.offset_x + plan.resized_width);
  const int vy0 = std::max(0, plan.offset_y);
  const int vy1 = std::min(th, plan.offset_y + plan.resized_height);
  if (vx0 == 0 && vy0 == 0 && vx1 == tw && vy1 == th) return;
  const float* pad_mean = pad_subtracts_mean ? mean : nullptr;
  for (int y = 0; y < th; ++y) {
    if (y < vy0 || y >= vy1) {
      detail::fill_span(spec, destination, tw, th, y, 0, tw, pad, pad_mean);
    } else {
      detail::fill_span(spec, destination, tw, th, y, 0, vx0, pad, pad_mean);
      detail::fill_span(spec, destination, tw, th, y, vx1, tw, pad, pad_mean);
    }
  }
}

ImagePreprocessor::ImagePreprocessor(ImageInputSpec spec) {
  PreprocessingSpec whole;
  whole.image_inputs.push_back(spec);
  validate_preprocessing(whole);

  auto impl = std::make_unique<Impl>();
  const int channels = spec.channel_count();
  impl->pixel_mean = spec.mean_file && !spec.mean_file->per_channel();
  for (int c = 0; c < channels; ++c) {
    const double std_c = spec.std.empty() ? 1.0 : static_cast<double>(spec.std[c]);
    double mean_c = spec.mean.empty() ? 0.0 : static_cast<double>(spec.mean[c]);
    if (spec.mean_file && !impl->pixel_mean) mean_c += static_cast<double>(spec.mean_file->data[c]);
    impl->std_of[c] = static_cast<float>(std_c);
    impl->coefficients.scale[c] = static_cast<float>(spec.pixel_scaling / 255.0 / std_c);
    impl->coefficients.bias[c] = static_cast<float>(-mean_c / std_c);
    if (!spec.pad_value.empty()) {
      const double pad = spec.pad_value.size() == 1 ? spec.pad_value[0] : spec.pad_value[c];
      impl->pad[c] = static_cast<float>(pad * spec.pixel_scaling / 255.0 / std_c - mean_c / std_c);
    }
  }
  impl->pad_subtracts_mean = impl->pixel_mean && !spec.pad_value.empty();
  impl->kernel = detail::pick_kernel(spec, impl->pixel_mean);
  impl->swap_before = detail::swaps_before(spec);
  impl->interpolation = cv_interpolation(spec.interpolation);
  if (spec.antialias) {
    impl->antialias = spec.interpolation == Interpolation::kCubic ? detail::ResampleFilter::kBicubic
                                                                  : detail::ResampleFilter::kBilinear;
  }
  impl->identity = spec.data_type == DataType::kUint8 && spec.dimension_order == DimensionOrder::kNHWC &&
                   spec.color_channels == ColorChannels::kBGR && !impl->pixel_mean;
  for (int c = 0; c < channels; ++c) {
    impl->identity =
        impl->identity && impl->coefficients.scale[c] == 1.0f && impl->coefficients.bias[c] == 0.0f;
  }
  impl->spec = std::move(spec);
  impl_ = std::move(impl);
}

ImagePreprocessor::~ImagePreprocessor() = default;

const ImageInputSpec& ImagePreprocessor::spec() const noexcept { return impl_->spec; }

cv::Mat ImagePreprocessor::resize(const cv::Mat& source, const ResizePlan& plan) const {
  check_source(source);
  check_plan(plan);
  if (source.cols == plan.resized_width && source.rows == plan.resized_height) return source;
  cv::Mat resized(plan.resized_height, plan.resized_width, CV_8UC3);
  impl_->resize_into(source, resized, plan);
  return resized;
}

void ImagePreprocessor::convert(const cv::Mat& resized_image, const ResizePlan& plan, void* destination,
                                Transform& transform) const {
  const Impl& impl = *impl_;
  check_source(resized_image);
  check_plan(plan);
  if (resized_image.cols != plan.resized_width || resized_image.rows != plan.resized_height) {
    throw Error(ErrorCode::kInternal, "resized image does not match its plan");
  }
  if (transform.crop_width <= 0.0 || transform.crop_height <= 0.0) {
    throw Error(ErrorCode::kInternal, "transform without a crop rectangle");
  }
  const int tw = plan.tensor_width;
  const int th = plan.tensor_height;
  const int channels = impl.spec.channel_count();
  std::shared_ptr<const std::vector<float>> mean;
  if (impl.pixel_mean) mean = impl.resized_mean(tw, th);

  const cv::Mat* resized = &resized_image;
  thread_local cv::Mat swapped;
  if (impl.swap_before) {
    cv::cvtColor(resized_image, swapped, cv::COLOR_BGR2RGB);
    resized = &swapped;
  }
  // The part of the tensor the resized image covers; the rest is padding.
  const int vx0 = std::max(0, plan.offset_x);
  const int vx1 = std::min(tw, plan.offset_x + plan.resized_width);
  const int vy0 = std::max(0, plan.offset_y);
  const int vy1 = std::min(th, plan.offset_y + plan.resized_height);
  const std::size_t element = impl.spec.data_type == DataType::kFloat32 ? sizeof(float) : sizeof(uint8_t);
  const std::size_t plane = static_cast<std::size_t>(tw) * static_cast<std::size_t>(th);
  const bool planar = impl.spec.dimension_order == DimensionOrder::kNCHW;
  auto* base = static_cast<unsigned char*>(destination);
  for (int y = vy0; y < vy1; ++y) {
    detail::Row row{};
    row.src = resized->ptr<uint8_t>(y - plan.offset_y) + 3 * (vx0 - plan.offset_x);
    row.count = vx1 - vx0;
    const std::size_t pixel = static_cast<std::size_t>(y) * static_cast<std::size_t>(tw) + vx0;
    for (int c = 0; c < (planar ? channels : 1); ++c) {
      const std::size_t at = planar ? c * plane + pixel : pixel * channels;
      row.out[c] = base + at * element;
      row.mean[c] = mean ? mean->data() + at : nullptr;
    }
    impl.kernel(row, impl.coefficients);
  }
  impl.fill_padding(plan, destination, mean ? mean->data() : nullptr);

  transform.scale_x = plan.resized_width / transform.crop_width;
  transform.scale_y = plan.resized_height / transform.crop_height;
  transform.offset_x = plan.offset_x;
  transform.offset_y = plan.offset_y;
  transform.tensor_width = tw;
  transform.tensor_height = th;
}

void ImagePreprocessor::write(const cv::Mat& source, const ResizePlan& plan, void* destination,
                              Transform& transform) const {
  const Impl& impl = *impl_;
  check_source(source);
  check_plan(plan);
  if (transform.crop_width <= 0.0 || transform.crop_height <= 0.0) {
    // Called without a roi step: the source is the whole image.
    transform.image_width = source.cols;
    transform.image_height = source.rows;
    transform.crop_x = 0.0;
    transform.crop_y = 0.0;
    transform.crop_width = source.cols;
    transform.crop_height = source.rows;
  }
  const bool inside = plan.offset_x >= 0 && plan.offset_y >= 0 &&
                      plan.offset_x + plan.resized_width <= plan.tensor_width &&
                      plan.offset_y + plan.resized_height <= plan.tensor_height;
  if (impl.identity && inside) {
    cv::Mat slot(plan.tensor_height, plan.tensor_width, CV_8UC3, destination);
    cv::Mat region = slot(cv::Rect(plan.offset_x, plan.offset_y, plan.resized_width, plan.resized_height));
    if (source.cols == plan.resized_width && source.rows == plan.resized_height) {
      source.copyTo(region);
    } else {
      impl.resize_into(source, region, plan);
    }
    impl.fill_padding(plan, destination, nullptr);
    transform.scale_x = plan.resized_width / transform.crop_width;
    transform.scale_y = plan.resized_height / transform.crop_height;
    transform.offset_x = plan.offset_x;
    transform.offset_y = plan.offset_y;
    transform.tensor_width = plan.tensor_width;
    transform.tensor_height = plan.tensor_height;
    return;
  }
  thread_local cv::Mat buffer;  // reused: one allocation per thread and size, not per image
  const cv::Mat* resized = &source;
  if (source.cols != plan.resized_width || source.rows != plan.resized_height) {
    buffer.create(plan.resized_height, plan.resized_width, CV_8UC3);
    impl.resize_into(source, buffer, plan);
    resized = &buffer;
  }
  convert(*resized, plan, destination, transform);
}

}  // namespace sightd
