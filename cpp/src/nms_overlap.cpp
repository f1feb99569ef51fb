#include "nms_overlap.hpp"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SIGHTD_X86 1
#endif

namespace sightd::detail {

namespace {

// IoU > threshold for kept box j; 0/0 (two empty boxes) is NaN, and NaN > threshold is false.
inline bool overlaps_one(const KeptBoxes& k, std::size_t j, const double b[5], double threshold) noexcept {
  const double xx1 = k.x1[j] > b[0] ? k.x1[j] : b[0];
  const double yy1 = k.y1[j] > b[1] ? k.y1[j] : b[1];
  const double xx2 = k.x2[j] < b[2] ? k.x2[j] : b[2];
  const double yy2 = k.y2[j] < b[3] ? k.y2[j] : b[3];
  double w = xx2 - xx1;
  double h = yy2 - yy1;
  w = w > 0.0 ? w : 0.0;
  h = h > 0.0 ? h : 0.0;
  const double inter = w * h;
  return inter / (b[4] + k.area[j] - inter) > threshold;
}

[[maybe_unused]] bool overlaps_any_scalar(const KeptBoxes& kept, const double box[5], double threshold) noexcept {
  for (std::size_t j = 0; j < kept.count; ++j) {
    if (overlaps_one(kept, j, box, threshold)) return true;
  }
  return false;
}

#ifdef SIGHTD_X86
// max/min with the kept value as the first operand: with no NaN around (the caller drops non-finite boxes),
// _mm_max_pd(a, b) = a > b ? a : b, as in the scalar code.
bool overlaps_any_sse2(const KeptBoxes& kept, const double box[5], double threshold) noexcept {
  const __m128d bx1 = _mm_set1_pd(box[0]), by1 = _mm_set1_pd(box[1]);
  const __m128d bx2 = _mm_set1_pd(box[2]), by2 = _mm_set1_pd(box[3]);
  const __m128d barea = _mm_set1_pd(box[4]), thr = _mm_set1_pd(threshold), zero = _mm_setzero_pd();
  std::size_t j = 0;
  for (; j + 2 <= kept.count; j += 2) {
    const __m128d w = _mm_max_pd(_mm_sub_pd(_mm_min_pd(_mm_loadu_pd(kept.x2 + j), bx2),
                                            _mm_max_pd(_mm_loadu_pd(kept.x1 + j), bx1)), zero);
    const __m128d h = _mm_max_pd(_mm_sub_pd(_mm_min_pd(_mm_loadu_pd(kept.y2 + j), by2),
                                            _mm_max_pd(_mm_loadu_pd(kept.y1 + j), by1)), zero);
    const __m128d inter = _mm_mul_pd(w, h);
    const __m128d uni = _mm_sub_pd(_mm_add_pd(barea, _mm_loadu_pd(kept.area + j)), inter);
    if (_mm_movemask_pd(_mm_cmpgt_pd(_mm_div_pd(inter, uni), thr))) return true;
  }
  for (; j < kept.count; ++j) {
    if (overlaps_one(kept, j, box, threshold)) return true;
  }
  return false;
}

__attribute__((target("avx"))) bool overlaps_any_avx(const KeptBoxes& kept, const double box[5],
                                                     double threshold) noexcept {
  const __m256d bx1 = _mm256_set1_pd(box[0]), by1 = _mm256_set1_pd(box[1]);
  const __m256d bx2 = _mm256_set1_pd(box[2]), by2 = _mm256_set1_pd(box[3]);
  const __m256d barea = _mm256_set1_pd(box[4]), thr = _mm256_set1_pd(threshold), zero = _mm256_setzero_pd();
  std::size_t j = 0;
  for (; j + 8 <= kept.count; j += 8) {
    __m256d hit = zero;
    for (std::size_t l = j; l < j + 8; l += 4) {
      const __m256d w = _mm256_max_pd(_mm256_sub_pd(_mm256_min_pd(_mm256_loadu_pd(kept.x2 + l), bx2),
                                                    _mm256_max_pd(_mm256_loadu_pd(kept.x1 + l), bx1)), zero);
      const __m256d h = _mm256_max_pd(_mm256_sub_pd(_mm256_min_pd(_mm256_loadu_pd(kept.y2 + l), by2),
                                                    _mm256_max_pd(_mm256_loadu_pd(kept.y1 + l), by1)), zero);
      const __m256d inter = _mm256_mul_pd(w, h);
      const __m256d uni = _mm256_sub_pd(_mm256_add_pd(barea, _mm256_loadu_pd(kept.area + l)), inter);
      hit = _mm256_or_pd(hit, _mm256_cmp_pd(_mm256_div_pd(inter, uni), thr, _CMP_GT_OQ));
    }
    if (_mm256_movemask_pd(hit)) return true;
  }
  for (; j < kept.count; ++j) {
    if (overlaps_one(kept, j, box, threshold)) return true;
  }
  return false;
}
#endif

using OverlapFn = bool (*)(const KeptBoxes&, const double*, double) noexcept;

OverlapFn choose() noexcept {
#ifdef SIGHTD_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx")) return overlaps_any_avx;
  return overlaps_any_sse2;
#else
  return overlaps_any_scalar;
#endif
}

const OverlapFn kOverlapsAny = choose();

}  // namespace

bool overlaps_any(const KeptBoxes& kept, const double box[5], double threshold) noexcept {
  return kOverlapsAny(kept, box, threshold);
}

}  // namespace sightd::detail
