// Writing one image into its slot of an input tensor: cv::resize into a buffer the size of the resized image
// (or straight into the slot when the values are the pixels themselves), then one pass that reorders the
// colour channels, scales, subtracts the means, divides by std and lays the values out, with every choice
// made once per image by picking an instantiated row kernel.
#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <type_traits>
#include <utility>

#include <opencv2/core/hal/intrin.hpp>
#include <opencv2/imgproc.hpp>

#include "sightd/error.hpp"
#include "sightd/preprocess.hpp"

namespace sightd {

namespace {

// BGR -> L weights (ITU-R BT.601, as OpenCV's COLOR_BGR2GRAY), applied to the resized pixels in float.
constexpr float kGreyB = 0.114f;
constexpr float kGreyG = 0.587f;
constexpr float kGreyR = 0.299f;
constexpr std::size_t kMeanCacheEntries = 16;

enum class Order { kKeep, kSwap, kGrey };

// value[c] = pixel[c] * scale[c] + bias[c] (- per-pixel mean), channels in the tensor's order.
struct Coefficients {
  float scale[3] = {1.0f, 1.0f, 1.0f};
  float bias[3] = {0.0f, 0.0f, 0.0f};
};

template <typename T>
inline T store(float v);
template <>
inline float store<float>(float v) {
  return v;
}
template <>
inline uint8_t store<uint8_t>(float v) {
  return cv::saturate_cast<uint8_t>(v);  // nearest, ties to even, as v_round below
}

struct Row {
  const uint8_t* src;  // BGR pixels of the resized image, first visible one
  int count;           // visible pixels in the row
  void* out[3];        // planar: one pointer per channel; interleaved: out[0]
  const float* mean[3];  // per-pixel mean (already divided by std), same layout as out; unused when absent
};

template <Order O>
inline void load(const uint8_t* p, const Coefficients& k, float& v0, float& v1, float& v2) {
  const float b = p[0];
  const float g = p[1];
  const float r = p[2];
  if constexpr (O == Order::kGrey) {
    v0 = (b * kGreyB + g * kGreyG + r * kGreyR) * k.scale[0] + k.bias[0];
    v1 = v2 = 0.0f;
  } else if constexpr (O == Order::kKeep) {
    v0 = b * k.scale[0] + k.bias[0];
    v1 = g * k.scale[1] + k.bias[1];
    v2 = r * k.scale[2] + k.bias[2];
  } else {
    v0 = r * k.scale[0] + k.bias[0];
    v1 = g * k.scale[1] + k.bias[1];
    v2 = b * k.scale[2] + k.bias[2];
  }
}

// One pixel at a time: the tail of a row after the SIMD blocks.
template <Order O, bool kPixelMean, bool kPlanar, typename T>
void scalar_pixels(const Row& row, const Coefficients& k, int x) {
  T* o0 = static_cast<T*>(row.out[0]);
  T* o1 = static_cast<T*>(row.out[1]);
  T* o2 = static_cast<T*>(row.out[2]);
  for (; x < row.count; ++x) {
    float v[3];
    load<O>(row.src + 3 * x, k, v[0], v[1], v[2]);
    if constexpr (O == Order::kGrey) {
      if constexpr (kPixelMean) v[0] -= row.mean[0][x];
      o0[x] = store<T>(v[0]);
    } else if constexpr (kPlanar) {
      if constexpr (kPixelMean) {
        for (int c = 0; c < 3; ++c) v[c] -= row.mean[c][x];
      }
      o0[x] = store<T>(v[0]);
      o1[x] = store<T>(v[1]);
      o2[x] = store<T>(v[2]);
    } else {
      for (int c = 0; c < 3; ++c) {
        if constexpr (kPixelMean) v[c] -= row.mean[0][3 * x + c];
        o0[3 * x + c] = store<T>(v[c]);
      }
    }
  }
}

#if CV_SIMD128
// 16 pixels: four float vectors per channel.
struct Block {
  cv::v_float32x4 c[3][4];
};

inline void widen(const cv::v_uint8x16& bytes, cv::v_float32x4 out[4]) {
  cv::v_uint16x8 low, high;
  cv::v_expand(bytes, low, high);
  cv::v_uint32x4 a, b, c, d;
  cv::v_expand(low, a, b);
  cv::v_expand(high, c, d);
  out[0] = cv::v_cvt_f32(cv::v_reinterpret_as_s32(a));
  out[1] = cv::v_cvt_f32(cv::v_reinterpret_as_s32(b));
  out[2] = cv::v_cvt_f32(cv::v_reinterpret_as_s32(c));
  out[3] = cv::v_cvt_f32(cv::v_reinterpret_as_s32(d));
}

inline cv::v_uint8x16 narrow(const cv::v_float32x4 in[4]) {
  // Saturation happens in the packs.
  const cv::v_int16x8 low = cv::v_pack(cv::v_round(in[0]), cv::v_round(in[1]));
  const cv::v_int16x8 high = cv::v_pack(cv::v_round(in[2]), cv::v_round(in[3]));
  return cv::v_pack_u(low, high);
}

template <Order O>
inline void load_block(const uint8_t* src, const Coefficients& k, Block& block) {
  cv::v_uint8x16 b8, g8, r8;
  cv::v_load_deinterleave(src, b8, g8, r8);
  cv::v_float32x4 b[4], g[4], r[4];
  widen(b8, b);
  widen(g8, g);
  widen(r8, r);
  for (int j = 0; j < 4; ++j) {
    if constexpr (O == Order::kGrey) {
      const cv::v_float32x4 grey =
          b[j] * cv::v_setall_f32(kGreyB) + g[j] * cv::v_setall_f32(kGreyG) + r[j] * cv::v_setall_f32(kGreyR);
      block.c[0][j] = grey * cv::v_setall_f32(k.scale[0]) + cv::v_setall_f32(k.bias[0]);
    } else {
      const cv::v_float32x4& first = O == Order::kKeep ? b[j] : r[j];
      const cv::v_float32x4& last = O == Order::kKeep ? r[j] : b[j];
      block.c[0][j] = first * cv::v_setall_f32(k.scale[0]) + cv::v_setall_f32(k.bias[0]);
      block.c[1][j] = g[j] * cv::v_setall_f32(k.scale[1]) + cv::v_setall_f32(k.bias[1]);
      block.c[2][j] = last * cv::v_setall_f32(k.scale[2]) + cv::v_setall_f32(k.bias[2]);
    }
  }
}

template <Order O, bool kPixelMean, bool kPlanar>
inline void subtract_mean(const Row& row, int x, Block& block) {
  if constexpr (kPixelMean) {
    constexpr int kChannels = O == Order::kGrey ? 1 : 3;
    for (int j = 0; j < 4; ++j) {
      const int at = x + 4 * j;
      if constexpr (kChannels == 1) {
        block.c[0][j] = block.c[0][j] - cv::v_load(row.mean[0] + at);
      } else if constexpr (kPlanar) {
        for (int c = 0; c < 3; ++c) block.c[c][j] = block.c[c][j] - cv::v_load(row.mean[c] + at);
      } else {
        cv::v_float32x4 m0, m1, m2;
        cv::v_load_deinterleave(row.mean[0] + 3 * at, m0, m1, m2);
        block.c[0][j] = block.c[0][j] - m0;
        block.c[1][j] = block.c[1][j] - m1;
        block.c[2][j] = block.c[2][j] - m2;
      }
    }
  } else {
    (void)row;
    (void)x;
    (void)block;
  }
}

template <Order O, bool kPlanar, typename T>
inline void store_block(const Row& row, int x, const Block& block) {
  constexpr int kChannels = O == Order::kGrey ? 1 : 3;
  if constexpr (std::is_same_v<T, float>) {
    for (int j = 0; j < 4; ++j) {
      const int at = x + 4 * j;
      if constexpr (kChannels == 1) {
        cv::v_store(static_cast<float*>(row.out[0]) + at, block.c[0][j]);
      } else if constexpr (kPlanar) {
        for (int c = 0; c < 3; ++c) cv::v_store(static_cast<float*>(row.out[c]) + at, block.c[c][j]);
      } else {
        cv::v_store_interleave(static_cast<float*>(row.out[0]) + 3 * at, block.c[0][j], block.c[1][j],
                               block.c[2][j]);
      }
    }
  } else {
    if constexpr (kChannels == 1) {
      cv::v_store(static_cast<uint8_t*>(row.out[0]) + x, narrow(block.c[0]));
    } else if constexpr (kPlanar) {
      for (int c = 0; c < 3; ++c) cv::v_store(static_cast<uint8_t*>(row.out[c]) + x, narrow(block.c[c]));
    } else {
      cv::v_store_interleave(static_cast<uint8_t*>(row.out[0]) + 3 * x, narrow(block.c[0]), narrow(block.c[1]),
                             narrow(block.c[2]));
    }
  }
}

// Interleaved (NHWC) colour output needs no deinterleaving: element e of the row is channel e % 3, so 16
// pixels are 12 float vectors whose coefficients repeat with a period of 3 vectors. (RGB output swaps the
// resized image's channels with cv::cvtColor first: much cheaper than shuffling bytes here without SSSE3.)
template <bool kPixelMean, typename T>
inline void interleaved_block(const Row& row, const Coefficients& k, int x) {
  const uint8_t* src = row.src + 3 * x;
  cv::v_float32x4 scale[3], bias[3];
  for (int j = 0; j < 3; ++j) {
    const int c = (4 * j) % 3;
    scale[j] = cv::v_float32x4(k.scale[c], k.scale[(c + 1) % 3], k.scale[(c + 2) % 3], k.scale[c]);
    bias[j] = cv::v_float32x4(k.bias[c], k.bias[(c + 1) % 3], k.bias[(c + 2) % 3], k.bias[c]);
  }
  for (int i = 0; i < 3; ++i) {
    cv::v_float32x4 f[4];
    widen(cv::v_load(src + 16 * i), f);
    for (int l = 0; l < 4; ++l) {
      const int j = 4 * i + l;  // vector index in the block
      f[l] = f[l] * scale[j % 3] + bias[j % 3];
      if constexpr (kPixelMean) f[l] = f[l] - cv::v_load(row.mean[0] + 3 * x + 4 * j);
      if constexpr (std::is_same_v<T, float>) cv::v_store(static_cast<float*>(row.out[0]) + 3 * x + 4 * j, f[l]);
    }
    if constexpr (!std::is_same_v<T, float>) cv::v_store(static_cast<uint8_t*>(row.out[0]) + 3 * x + 16 * i, narrow(f));
  }
}
#endif

// Converts one row of visible pixels: blocks of 16 with OpenCV's universal intrinsics (SSE2, NEON...), then
// the remaining pixels one by one.
template <Order O, bool kPixelMean, bool kPlanar, typename T>
void convert_row(const Row& row, const Coefficients& k) {
  int x = 0;
#if CV_SIMD128
  for (; x + 16 <= row.count; x += 16) {
    if constexpr (!kPlanar && O == Order::kKeep) {
      interleaved_block<kPixelMean, T>(row, k, x);
    } else {
      Block block;
      load_block<O>(row.src + 3 * x, k, block);
      subtract_mean<O, kPixelMean, kPlanar>(row, x, block);
      store_block<O, kPlanar, T>(row, x, block);
    }
  }
#endif
  scalar_pixels<O, kPixelMean, kPlanar, T>(row, k, x);
}

using RowKernel = void (*)(const Row&, const Coefficients&);

template <Order O, bool kPixelMean, typename T>
RowKernel pick_layout(DimensionOrder order) {
  return order == DimensionOrder::kNCHW ? &convert_row<O, kPixelMean, true, T>
                                        : &convert_row<O, kPixelMean, false, T>;
}

template <Order O, bool kPixelMean>
RowKernel pick_type(const ImageInputSpec& spec) {
  return spec.data_type == DataType::kFloat32 ? pick_layout<O, kPixelMean, float>(spec.dimension_order)
                                              : pick_layout<O, kPixelMean, uint8_t>(spec.dimension_order);
}

template <Order O>
RowKernel pick_mean(const ImageInputSpec& spec, bool pixel_mean) {
  return pixel_mean ? pick_type<O, true>(spec) : pick_type<O, false>(spec);
}

// Interleaved RGB output reads an RGB copy of the resized image (see interleaved_block).
bool swaps_before(const ImageInputSpec& spec) {
  return spec.color_channels == ColorChannels::kRGB && spec.dimension_order == DimensionOrder::kNHWC;
}

RowKernel pick_kernel(const ImageInputSpec& spec, bool pixel_mean) {
  switch (spec.color_channels) {
    case ColorChannels::kBGR: return pick_mean<Order::kKeep>(spec, pixel_mean);
    case ColorChannels::kRGB:
      return swaps_before(spec) ? pick_mean<Order::kKeep>(spec, pixel_mean) : pick_mean<Order::kSwap>(spec, pixel_mean);
    case ColorChannels::kL: return pick_mean<Order::kGrey>(spec, pixel_mean);
  }
  return nullptr;
}

int cv_interpolation(Interpolation interpolation) {
  switch (interpolation) {
    case Interpolation::kLinear: return cv::INTER_LINEAR;
    case Interpolation::kArea: return cv::INTER_AREA;
    case Interpolation::kCubic: return cv::INTER_CUBIC;
    case Interpolation::kNearest: return cv::INTER_NEAREST;
  }
  return cv::INTER_LINEAR;
}

template <typename T>
void fill_span(void* destination, const ImageInputSpec& spec, int tensor_width, int tensor_height, int y, int x0,
               int x1, const float* pad, const float* mean) {
  if (x1 <= x0) return;
  const int channels = spec.channel_count();
  T* out = static_cast<T*>(destination);
  const std::size_t plane = static_cast<std::size_t>(tensor_width) * static_cast<std::size_t>(tensor_height);
  for (int c = 0; c < channels; ++c) {
    for (int x = x0; x < x1; ++x) {
      const std::size_t pixel = static_cast<std::size_t>(y) * static_cast<std::size_t>(tensor_width) + x;
      const std::size_t at = spec.dimension_order == DimensionOrder::kNCHW ? c * plane + pixel
                                                                           : pixel * channels + c;
      out[at] = store<T>(mean != nullptr ? pad[c] - mean[at] : pad[c]);
    }
  }
}

}  // namespace

struct ImagePreprocessor::Impl {
  ImageInputSpec spec;
  Coefficients coefficients;
  bool pixel_mean = false;
  float std_of[3] = {1.0f, 1.0f, 1.0f};
  RowKernel kernel = nullptr;
  int interpolation = cv::INTER_LINEAR;
  // The values are the resized pixels themselves: resize straight into the tensor.
  bool identity = false;
  bool swap_before = false;
  float pad[3] = {0.0f, 0.0f, 0.0f};  // output value of a padding element (before a per-pixel mean)
  bool pad_subtracts_mean = false;

  mutable std::mutex cache_mutex;
  mutable std::map<std::pair<int, int>, std::pair<uint64_t, std::shared_ptr<const std::vector<float>>>> mean_cache;
  mutable uint64_t cache_clock = 0;

  // The per-pixel mean divided by std, resized to the tensor size and laid out as the tensor.
  std::shared_ptr<const std::vector<float>> resized_mean(int width, int height) const {
    const auto key = std::make_pair(width, height);
    {
      std::lock_guard<std::mutex> lock(cache_mutex);
      auto found = mean_cache.find(key);
      if (found != mean_cache.end()) {
        found->second.first = ++cache_clock;
        return found->second.second;
      }
    }
    const MeanImage& mean = *spec.mean_file;
    const int channels = mean.channels;
    const std::size_t plane = static_cast<std::size_t>(width) * static_cast<std::size_t>(height);
    auto values = std::make_shared<std::vector<float>>(plane * static_cast<std::size_t>(channels));
    for (int c = 0; c < channels; ++c) {
      cv::Mat source(mean.height, mean.width, CV_32F,
                     const_cast<float*>(mean.data.data()) +
                         static_cast<std::size_t>(c) * static_cast<std::size_t>(mean.height) * mean.width);
      cv::Mat resized;
      if (mean.width == width && mean.height == height) {
        resized = source;
      } else {
        cv::resize(source, resized, cv::Size(width, height), 0, 0, cv::INTER_LINEAR);
      }
      const float inverse_std = 1.0f / std_of[c];
      for (int y = 0; y < height; ++y) {
        const float* row = resized.ptr<float>(y);
        for (int x = 0; x < width; ++x) {
          const std::size_t pixel = static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + x;
          const std::size_t at = spec.dimension_order == DimensionOrder::kNCHW ? c * plane + pixel
                                                                               : pixel * channels + c;
          (*values)[at] = row[x] * inverse_std;
        }
      }
    }
    std::lock_guard<std::mutex> lock(cache_mutex);
    // NETWORK resizing makes one tensor size per image aspect: keep the most recently used few.
    if (mean_cache.size() >= kMeanCacheEntries) {
      auto oldest = std::min_element(mean_cache.begin(), mean_cache.end(), [](const auto& a, const auto& b) {
        return a.second.first < b.second.first;
      });
      mean_cache.erase(oldest);
    }
    mean_cache[key] = {++cache_clock, values};
    return values;
  }
};

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
  impl->kernel = pick_kernel(spec, impl->pixel_mean);
  impl->swap_before = swaps_before(spec);
  impl->interpolation = cv_interpolation(spec.interpolation);
  impl->identity = spec.data_type == DataType::kUint8 && spec.dimension_order == DimensionOrder::kNHWC &&
                   spec.color_channels == ColorChannels::kBGR && !impl->pixel_mean;
  for (int c = 0; c < channels; ++c) {
    impl->identity = impl->identity && impl->coefficients.scale[c] == 1.0f && impl->coefficients.bias[c] == 0.0f;
  }
  impl->spec = std::move(spec);
  impl_ = std::move(impl);
}

ImagePreprocessor::~ImagePreprocessor() = default;

const ImageInputSpec& ImagePreprocessor::spec() const noexcept { return impl_->spec; }

void ImagePreprocessor::write(const cv::Mat& source, const ResizePlan& plan, void* destination,
                              Transform& transform) const {
  const Impl& impl = *impl_;
  const ImageInputSpec& spec = impl.spec;
  if (source.empty() || source.type() != CV_8UC3) {
    throw Error(ErrorCode::kInternal, "preprocessing needs a non-empty 8-bit BGR image");
  }
  if (plan.resized_width < 1 || plan.resized_height < 1 || plan.tensor_width < 1 || plan.tensor_height < 1) {
    throw Error(ErrorCode::kInternal, "empty resize plan");
  }
  const int tw = plan.tensor_width;
  const int th = plan.tensor_height;
  const int channels = spec.channel_count();
  // The part of the tensor the resized image covers; the rest is padding.
  const int vx0 = std::max(0, plan.offset_x);
  const int vx1 = std::min(tw, plan.offset_x + plan.resized_width);
  const int vy0 = std::max(0, plan.offset_y);
  const int vy1 = std::min(th, plan.offset_y + plan.resized_height);
  const cv::Size resized_size(plan.resized_width, plan.resized_height);
  const bool same_size = source.cols == plan.resized_width && source.rows == plan.resized_height;

  std::shared_ptr<const std::vector<float>> mean;
  if (impl.pixel_mean) mean = impl.resized_mean(tw, th);

  if (impl.identity && plan.offset_x >= 0 && plan.offset_y >= 0 && vx1 - vx0 == plan.resized_width &&
      vy1 - vy0 == plan.resized_height) {
    cv::Mat slot(th, tw, CV_8UC3, destination);
    cv::Mat region = slot(cv::Rect(plan.offset_x, plan.offset_y, plan.resized_width, plan.resized_height));
    if (same_size) {
      source.copyTo(region);
    } else {
      cv::resize(source, region, resized_size, 0, 0, impl.interpolation);
    }
  } else {
    thread_local cv::Mat buffer;
    thread_local cv::Mat swapped;
    const cv::Mat* resized = &source;
    if (!same_size) {
      cv::resize(source, buffer, resized_size, 0, 0, impl.interpolation);
      resized = &buffer;
    }
    if (impl.swap_before) {
      cv::cvtColor(*resized, swapped, cv::COLOR_BGR2RGB);
      resized = &swapped;
    }
    const std::size_t element = spec.data_type == DataType::kFloat32 ? sizeof(float) : sizeof(uint8_t);
    const std::size_t plane = static_cast<std::size_t>(tw) * static_cast<std::size_t>(th);
    auto* base = static_cast<unsigned char*>(destination);
    const bool planar = spec.dimension_order == DimensionOrder::kNCHW;
    for (int y = vy0; y < vy1; ++y) {
      Row row{};
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
  }

  if (vx0 > 0 || vy0 > 0 || vx1 < tw || vy1 < th) {
    const float* pad_mean = impl.pad_subtracts_mean ? mean->data() : nullptr;
    const auto fill = [&](int y, int x0, int x1) {
      if (spec.data_type == DataType::kFloat32) {
        fill_span<float>(destination, spec, tw, th, y, x0, x1, impl.pad, pad_mean);
      } else {
        fill_span<uint8_t>(destination, spec, tw, th, y, x0, x1, impl.pad, pad_mean);
      }
    };
    for (int y = 0; y < th; ++y) {
      if (y < vy0 || y >= vy1) {
        fill(y, 0, tw);
      } else {
        fill(y, 0, vx0);
        fill(y, vx1, tw);
      }
    }
  }

  if (transform.crop_width <= 0.0 || transform.crop_height <= 0.0) {
    // Called without a roi step: the source is the whole image.
    transform.image_width = source.cols;
    transform.image_height = source.rows;
    transform.crop_x = 0.0;
    transform.crop_y = 0.0;
    transform.crop_width = source.cols;
    transform.crop_height = source.rows;
  }
  transform.scale_x = plan.resized_width / transform.crop_width;
  transform.scale_y = plan.resized_height / transform.crop_height;
  transform.offset_x = plan.offset_x;
  transform.offset_y = plan.offset_y;
  transform.tensor_width = tw;
  transform.tensor_height = th;
}

}  // namespace sightd
