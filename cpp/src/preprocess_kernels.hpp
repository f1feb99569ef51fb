// Internal to the core: the row kernels behind ImagePreprocessor (preprocess_kernels.cpp).
#pragma once

#include <cstdint>

#include "sightd/preprocess.hpp"

namespace sightd::detail {

// value[c] = pixel[c] * scale[c] + bias[c] (- per-pixel mean), channels in the tensor's order.
struct Coefficients {
  float scale[3] = {1.0f, 1.0f, 1.0f};
  float bias[3] = {0.0f, 0.0f, 0.0f};
};

struct Row {
  const uint8_t* src;  // BGR pixels of the resized image, first visible one
  int count;           // visible pixels in the row
  void* out[3];        // planar: one pointer per channel; interleaved: out[0]
  const float* mean[3];  // per-pixel mean (already divided by std), same layout as out; unused when absent
};

using RowKernel = void (*)(const Row&, const Coefficients&);

// The kernel for a spec; `pixel_mean` when the spec has a per-pixel mean file.
RowKernel pick_kernel(const ImageInputSpec& spec, bool pixel_mean);
// Interleaved RGB output reads an RGB copy of the resized image (see interleaved_block).
bool swaps_before(const ImageInputSpec& spec);
// Writes the padding elements [x0, x1) of tensor row y: pad[c], minus the per-pixel mean when `mean` is set.
void fill_span(const ImageInputSpec& spec, void* destination, int tensor_width, int tensor_height, int y,
               int x0, int x1, const float* pad, const float* mean);

}  // namespace sightd::detail
