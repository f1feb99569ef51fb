// The row kernels of ImagePreprocessor: one instantiation per colour order, mean kind, layout and element
// type, each converting a row of resized BGR pixels in blocks of 16 with OpenCV's universal intrinsics.
#include "preprocess_kernels.hpp"

#include <algorithm>
#include <type_traits>

#include <opencv2/core/hal/intrin.hpp>

namespace sightd::detail {

namespace {

// BGR -> L weights (ITU-R BT.601, as OpenCV's COLOR_BGR2GRAY), applied to the resized pixels in float.
constexpr float kGreyB = 0.114f;
constexpr float kGreyG = 0.587f;
constexpr float kGreyR = 0.299f;

enum class Order { kKeep, kSwap, kGrey };

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
      cv::v_store_interleave(static_cast<uint8_t*>(row.out[0]) + 3 * x, narrow(block.c[0]),
                             narrow(block.c[1]), narrow(block.c[2]));
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
  T* out = static_cast<T*>(row.out[0]) + 3 * x;
  for (int i = 0; i < 3; ++i) {
    cv::v_float32x4 f[4];
    widen(cv::v_load(src + 16 * i), f);
    for (int l = 0; l < 4; ++l) {
      const int j = 4 * i + l;  // vector index in the block
      f[l] = f[l] * scale[j % 3] + bias[j % 3];
      if constexpr (kPixelMean) f[l] = f[l] - cv::v_load(row.mean[0] + 3 * x + 4 * j);
      if constexpr (std::is_same_v<T, float>) cv::v_store(out + 4 * j, f[l]);
    }
    if constexpr (!std::is_same_v<T, float>) cv::v_store(out + 16 * i, narrow(f));
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

}  // namespace

bool swaps_before(const ImageInputSpec& spec) {
  return spec.color_channels == ColorChannels::kRGB && spec.dimension_order == DimensionOrder::kNHWC;
}

RowKernel pick_kernel(const ImageInputSpec& spec, bool pixel_mean) {
  switch (spec.color_channels) {
    case ColorChannels::kBGR: return pick_mean<Order::kKeep>(spec, pixel_mean);
    case ColorChannels::kRGB:
      return swaps_before(spec) ? pick_mean<Order::kKeep>(spec, pixel_mean)
                                : pick_mean<Order::kSwap>(spec, pixel_mean);
    case ColorChannels::kL: return pick_mean<Order::kGrey>(spec, pixel_mean);
  }
  return nullptr;
}

namespace {

template <typename T>
void fill_typed(void* destination, const ImageInputSpec& spec, int tensor_width, int tensor_height, int y,
                int x0, int x1, const float* pad, const float* mean) {
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

void fill_span(const ImageInputSpec& spec, void* destination, int tensor_width, int tensor_height, int y,
               int x0, int x1, const float* pad, const float* mean) {
  if (spec.data_type == DataType::kFloat32) {
    fill_typed<float>(destination, spec, tensor_width, tensor_height, y, x0, x1, pad, mean);
  } else {
    fill_typed<uint8_t>(destination, spec, tensor_width, tensor_height, y, x0, x1, pad, mean);
  }
}

}  // namespace sightd::detail
