// The inner loop of NMS: does a box overlap any of the boxes kept so far above the threshold? Written with
// SIMD (SSE2, or AVX where the CPU has it, chosen at run time) because it dominates NMS time; every lane does
// the scalar computation's IEEE operations in the same order, so the answer is bit-for-bit the same.
#pragma once

#include <cstddef>

namespace sightd::detail {

struct KeptBoxes {
  const double* x1;
  const double* y1;
  const double* x2;
  const double* y2;
  const double* area;
  std::size_t count;
};

// True when IoU(box, kept[j]) > threshold for some j; box = {x1, y1, x2, y2, area}.
bool overlaps_any(const KeptBoxes& kept, const double box[5], double threshold) noexcept;

}  // namespace sightd::detail
