// Pillow's convolution resampling for 8-bit BGR images, reproduced bit for bit (taps and coefficients:
// resize_antialias_taps.cpp): the two passes in Pillow 13's order, each rounded to 8 bits as Pillow rounds.
//
// The SIMD passes add exactly Pillow's int32 sums, multiplying 16-bit numbers (SSE2's pmaddwd: two taps per
// instruction) with each coefficient split as hi * 2^11 + lo. The vertical pass works on 16 bytes of a row at
// a time. The horizontal pass works on blocks of 16 rows, transposed so that one 16-byte vector holds one
// byte position (a channel of a pixel) of 16 rows: it then is the vertical pass again, a coefficient per tap
// applied to whole vectors, with no shuffling per pixel; the result is transposed back into rows.
#include "resize_antialias.hpp"

#include <algorithm>

#include <opencv2/core/hal/intrin.hpp>

#include "sightd/error.hpp"

namespace sightd::detail {

namespace {

constexpr int32_t kHalf = 1 << (kPrecisionBits - 1);
constexpr int kBlock = 16;  // rows per block of the horizontal pass

inline uint8_t clip8(int32_t sum) {
  const int32_t value = sum >> kPrecisionBits;  // arithmetic shift, as Pillow's
  return static_cast<uint8_t>(std::clamp(value, 0, 255));
}

// The outputs [begin, end) of an axis and the source pixels [first, last) they read.
struct Span {
  int begin = 0;
  int end = 0;
  int first = 0;
  int last = 0;
};

Span span_of(const AxisTaps& taps, int begin, int end) {
  Span span{begin, end, taps.in_size, 0};
  for (int i = begin; i < end; ++i) {
    const int start = taps.start[static_cast<std::size_t>(i)];
    span.first = std::min(span.first, start);
    span.last = std::max(span.last, start + taps.count[static_cast<std::size_t>(i)]);
  }
  span.first = std::min(span.first, span.last);
  return span;
}

// Pillow's arithmetic as written, for the spans too narrow for the block pass and builds without SIMD. `src`
// points at source pixel span.first, `dst` at output pixel span.begin.
void horizontal_row_scalar(const uint8_t* src, uint8_t* dst, const AxisTaps& taps, const Span& span) {
  for (int xx = span.begin; xx < span.end; ++xx) {
    const int x0 = taps.start[static_cast<std::size_t>(xx)] - span.first;
    const int count = taps.count[static_cast<std::size_t>(xx)];
    const int32_t* k = taps.coefficient.data() + static_cast<std::size_t>(xx) * taps.stride;
    for (int c = 0; c < 3; ++c) {
      int32_t sum = kHalf;
      for (int t = 0; t < count; ++t) sum += src[3 * (x0 + t) + c] * k[t];
      dst[3 * (xx - span.begin) + c] = clip8(sum);
    }
  }
}

#if CV_SIMD128
// (p0 * hi0 + p1 * hi1) * 2^11 + p0 * lo0 + p1 * lo1 = p0 * k0 + p1 * k1 for each pair of 16-bit lanes. The
// products may wrap around in int32 (bicubic's largest weights exceed 1), the total does not: int32 adds wrap
// modulo 2^32, so the sum comes out exact, as Pillow's int32 sum does.
inline cv::v_int32x4 pair_products(const cv::v_uint16x8& pixels, const cv::v_int16x8& hi,
                                   const cv::v_int16x8& lo) {
  const cv::v_int16x8 p = cv::v_reinterpret_as_s16(pixels);
  return cv::v_shl<kSplitBits>(cv::v_dotprod(p, hi)) + cv::v_dotprod(p, lo);
}

// sum(a[t] * k[t]) over taps t for 16 bytes, rounded and clipped as Pillow does: `vector(t)` gives a[t],
// `pairs` the coefficients as AxisTaps::pairs lays them out; count may be odd (the padded k is 0).
template <typename Vector>
inline cv::v_uint8x16 convolve16(const Vector& vector, int count, const int16_t* pairs) {
  cv::v_int32x4 s0 = cv::v_setall_s32(kHalf);
  cv::v_int32x4 s1 = s0;
  cv::v_int32x4 s2 = s0;
  cv::v_int32x4 s3 = s0;
  for (int t = 0; t < count; t += 2) {
    // Two taps interleaved: 16-bit (a0, b0, a1, b1, ...) against (k0, k1, k0, k1, ...).
    cv::v_uint8x16 z0;
    cv::v_uint8x16 z1;
    cv::v_zip(vector(t), vector(t + 1), z0, z1);
    cv::v_uint16x8 e0;
    cv::v_uint16x8 e1;
    cv::v_uint16x8 e2;
    cv::v_uint16x8 e3;
    cv::v_expand(z0, e0, e1);
    cv::v_expand(z1, e2, e3);
    const cv::v_int16x8 hi = cv::v_load(pairs + t / 2 * kPairValues);
    const cv::v_int16x8 lo = cv::v_load(pairs + t / 2 * kPairValues + kPairValues / 2);
    s0 += pair_products(e0, hi, lo);
    s1 += pair_products(e1, hi, lo);
    s2 += pair_products(e2, hi, lo);
    s3 += pair_products(e3, hi, lo);
  }
  const cv::v_int16x8 first =
      cv::v_pack(cv::v_shr<kPrecisionBits>(s0), cv::v_shr<kPrecisionBits>(s1));
  const cv::v_int16x8 second =
      cv::v_pack(cv::v_shr<kPrecisionBits>(s2), cv::v_shr<kPrecisionBits>(s3));
  return cv::v_pack_u(first, second);
}

// A 16 x 16 byte transpose: four rounds of interleaving vector i with vector i + 8.
inline void transpose16(cv::v_uint8x16 (&v)[kBlock]) {
  cv::v_uint8x16 next[kBlock];
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < kBlock / 2; ++i) cv::v_zip(v[i], v[i + kBlock / 2], next[2 * i], next[2 * i + 1]);
    for (int i = 0; i < kBlock; ++i) v[i] = next[i];
  }
}

// 16 rows of `bytes` bytes (>= 16) -> `bytes` vectors, vector b holding byte b of every row.
void rows_to_columns(const uint8_t* const* rows, int bytes, uint8_t* columns) {
  for (int p = 0; p < bytes; p += kBlock) {
    const int at = std::min(p, bytes - kBlock);  // the last tile overlaps the one before: same values
    cv::v_uint8x16 v[kBlock];
    for (int i = 0; i < kBlock; ++i) v[i] = cv::v_load(rows[i] + at);
    transpose16(v);
    for (int i = 0; i < kBlock; ++i) cv::v_store(columns + kBlock * (at + i), v[i]);
  }
}

void columns_to_rows(const uint8_t* columns, int bytes, uint8_t* const* rows) {
  for (int p = 0; p < bytes; p += kBlock) {
    const int at = std::min(p, bytes - kBlock);
    cv::v_uint8x16 v[kBlock];
    for (int i = 0; i < kBlock; ++i) v[i] = cv::v_load(columns + kBlock * (at + i));
    transpose16(v);
    for (int i = 0; i < kBlock; ++i) cv::v_store(rows[i] + at, v[i]);
  }
}
#endif

// The horizontal pass over a span of outputs, kBlock rows at a time.
class HorizontalPass {
 public:
  HorizontalPass(const AxisTaps& taps, const Span& span) : taps_(taps), span_(span) {
#if CV_SIMD128
    const std::size_t in_bytes = 3 * static_cast<std::size_t>(span.last - span.first);
    const std::size_t out_bytes = 3 * static_cast<std::size_t>(span.end - span.begin);
    blocks_ = in_bytes >= kBlock && out_bytes >= kBlock;  // rows of at least one 16-byte tile
    if (blocks_) {
      // Three zero vectors past the last pixel: the pad tap of an odd count may point there.
      columns_.assign(kBlock * (in_bytes + 3), 0);
      out_columns_.resize(kBlock * out_bytes);
      spare_.resize(out_bytes);
    }
#endif
  }

  // Up to kBlock rows: src[i] points at the source pixel span.first of a row, dst[i] at the output pixel
  // span.begin of its output row.
  void run(const uint8_t* const* src, uint8_t* const* dst, int rows) {
#if CV_SIMD128
    if (blocks_) {
      const uint8_t* in[kBlock];
      uint8_t* out[kBlock];
      for (int i = 0; i < kBlock; ++i) {
        in[i] = src[std::min(i, rows - 1)];
        out[i] = i < rows ? dst[i] : spare_.data();
      }
      run_block(in, out);
      return;
    }
#endif
    for (int i = 0; i < rows; ++i) horizontal_row_scalar(src[i], dst[i], taps_, span_);
  }

 private:
#if CV_SIMD128
  void run_block(const uint8_t* const* in, uint8_t* const* out) {
    rows_to_columns(in, 3 * (span_.last - span_.first), columns_.data());
    for (int xx = span_.begin; xx < span_.end; ++xx) {
      const std::size_t at = static_cast<std::size_t>(xx) * static_cast<std::size_t>(taps_.stride);
      const int x0 = taps_.start[static_cast<std::size_t>(xx)] - span_.first;
      const int count = taps_.count[static_cast<std::size_t>(xx)];
      const std::size_t out_at = 3 * static_cast<std::size_t>(xx - span_.begin);
      for (int c = 0; c < 3; ++c) {
        const uint8_t* first = columns_.data() + kBlock * (3 * static_cast<std::size_t>(x0) + c);
        const auto vector = [first](int t) { return cv::v_load(first + kBlock * 3 * t); };
        const cv::v_uint8x16 result = convolve16(vector, count, taps_.pairs.data() + at / 2 * kPairValues);
        cv::v_store(out_columns_.data() + kBlock * (out_at + c), result);
      }
    }
    columns_to_rows(out_columns_.data(), 3 * (span_.end - span_.begin), out);
  }

  bool blocks_ = false;
  std::vector<uint8_t> columns_;
  std::vector<uint8_t> out_columns_;
  std::vector<uint8_t> spare_;  // the output of padding rows in a short block
#endif
  const AxisTaps& taps_;
  Span span_;
};

// One row of the vertical pass: `bytes` bytes from rows[0..count]; rows[count] repeats the last row (the
// padded coefficient of an odd count is 0).
void vertical_row(const uint8_t* const* rows, int count, const AxisTaps& taps, int yy, uint8_t* dst,
                  int bytes) {
  const std::size_t at = static_cast<std::size_t>(yy) * static_cast<std::size_t>(taps.stride);
  int done = 0;
#if CV_SIMD128
  if (bytes >= 16) {
    for (int i = 0; i < bytes; i += 16) {
      const int x = std::min(i, bytes - 16);  // the last block overlaps the one before: same values
      const auto vector = [rows, x](int t) { return cv::v_load(rows[t] + x); };
      cv::v_store(dst + x, convolve16(vector, count, taps.pairs.data() + at / 2 * kPairValues));
    }
    done = bytes;
  }
#endif
  const int32_t* k = taps.coefficient.data() + at;
  for (int i = done; i < bytes; ++i) {
    int32_t sum = kHalf;
    for (int t = 0; t < count; ++t) sum += rows[t][i] * k[t];
    dst[i] = clip8(sum);
  }
}

}  // namespace

void resize_antialias(const cv::Mat& source, cv::Mat& destination, const AntialiasPlan& plan,
                      const cv::Rect& region) {
  const AxisTaps& horizontal = plan.horizontal;
  const AxisTaps& vertical = plan.vertical;
  if (source.type() != CV_8UC3 || destination.type() != CV_8UC3 || source.cols != horizontal.in_size ||
      source.rows != vertical.in_size || destination.cols != horizontal.out_size ||
      destination.rows != vertical.out_size || region.empty() ||
      (region & cv::Rect(0, 0, destination.cols, destination.rows)) != region) {
    throw Error(ErrorCode::kInternal, "antialiased resize: images do not match the plan");
  }
  const bool need_horizontal = source.cols != destination.cols;
  const bool need_vertical = source.rows != destination.rows;
  if (!need_horizontal && !need_vertical) {
    source(region).copyTo(destination(region));
    return;
  }
  // An axis that keeps its size reads the source pixels of the outputs themselves.
  const Span xs = need_horizontal ? span_of(horizontal, region.x, region.x + region.width)
                                  : Span{region.x, region.x + region.width, region.x, region.x + region.width};
  const Span ys = need_vertical ? span_of(vertical, region.y, region.y + region.height)
                                : Span{region.y, region.y + region.height, region.y, region.y + region.height};
  const int out_bytes = 3 * (xs.end - xs.begin);
  const auto source_row = [&](int y) { return source.ptr<uint8_t>(y) + 3 * xs.first; };
  const auto output_row = [&](int y) { return destination.ptr<uint8_t>(y) + 3 * xs.begin; };
  HorizontalPass horizontal_pass(horizontal, xs);
  const uint8_t* in[kBlock];
  uint8_t* out[kBlock];
  if (!need_vertical) {
    for (int y = ys.begin; y < ys.end; y += kBlock) {
      const int rows = std::min(kBlock, ys.end - y);
      for (int i = 0; i < rows; ++i) {
        in[i] = source_row(y + i);
        out[i] = output_row(y + i);
      }
      horizontal_pass.run(in, out, rows);
    }
    return;
  }

  std::vector<const uint8_t*> taps_rows(static_cast<std::size_t>(vertical.stride) + 1);
  // Points taps_rows at output row yy's rows (row(y) gives row y); returns their count.
  const auto gather = [&](int yy, const auto& row) {
    const int y0 = vertical.start[static_cast<std::size_t>(yy)];
    const int count = vertical.count[static_cast<std::size_t>(yy)];
    for (int t = 0; t < count; ++t) taps_rows[static_cast<std::size_t>(t)] = row(y0 + t);
    taps_rows[static_cast<std::size_t>(count)] = count > 0 ? taps_rows[static_cast<std::size_t>(count - 1)]
                                                           : source.ptr<uint8_t>(0);
    return count;
  };

  // Pillow 13 runs the vertical pass first when the height shrinks by more than twice as many pixels as the
  // width (its pull request #9549); the order changes the intermediate rounding, so it is followed too.
  const int64_t height_shrink = static_cast<int64_t>(source.rows) - destination.rows;
  const int64_t width_shrink = static_cast<int64_t>(source.cols) - destination.cols;
  if (!need_horizontal || (height_shrink > 0 && height_shrink > 2 * width_shrink)) {
    // The intermediate (the source columns the horizontal pass reads x the output rows), a block at a time.
    const int bytes = 3 * (xs.last - xs.first);
    std::vector<uint8_t> block(need_horizontal ? static_cast<std::size_t>(kBlock) * bytes : 0);
    for (int y = ys.begin; y < ys.end; y += kBlock) {
      const int rows = std::min(kBlock, ys.end - y);
      for (int i = 0; i < rows; ++i) {
        uint8_t* row = need_horizontal ? block.data() + static_cast<std::size_t>(i) * bytes : output_row(y + i);
        const int count = gather(y + i, source_row);
        vertical_row(taps_rows.data(), count, vertical, y + i, row, bytes);
        in[i] = row;
        out[i] = output_row(y + i);
      }
      if (need_horizontal) horizontal_pass.run(in, out, rows);
    }
    return;
  }

  // Horizontal first: the intermediate (the output columns x the source rows the vertical pass reads) is made
  // a block of rows at a time as the vertical pass comes to need them, into a ring of rows. The taps' windows
  // only move forwards, so the ring holds one window and one block.
  const int ring_rows = vertical.stride + kBlock;
  std::vector<uint8_t> ring(static_cast<std::size_t>(out_bytes) * static_cast<std::size_t>(ring_rows));
  const auto ring_row = [&](int y) {
    return ring.data() + static_cast<std::size_t>(y % ring_rows) * static_cast<std::size_t>(out_bytes);
  };
  int computed = 0;  // source rows [0, computed) have been through the horizontal pass, or are not needed
  const auto intermediate_row = [&](int y) {
    while (computed <= y) {
      const int rows = std::min(kBlock, ys.last - computed);
      for (int i = 0; i < rows; ++i) {
        in[i] = source_row(computed + i);
        out[i] = ring_row(computed + i);
      }
      horizontal_pass.run(in, out, rows);
      computed += rows;
    }
    return static_cast<const uint8_t*>(ring_row(y));
  };
  for (int yy = ys.begin; yy < ys.end; ++yy) {
    computed = std::max(computed, vertical.start[static_cast<std::size_t>(yy)]);  // rows above: never read
    const int count = gather(yy, intermediate_row);
    vertical_row(taps_rows.data(), count, vertical, yy, output_row(yy), out_bytes);
  }
}

}  // namespace sightd::detail
