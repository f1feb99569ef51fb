// Mean files of v0.7 preprocessing: Caffe's BlobProto (`.binaryproto`) and NumPy's `.npy`, read without a
// protobuf or NumPy dependency. A mean is either per channel (height = width = 1) or per pixel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sightd {

struct MeanImage {
  int channels = 0;
  int height = 1;
  int width = 1;
  std::vector<float> data;  // planar: data[(c * height + y) * width + x]

  bool per_channel() const noexcept { return height == 1 && width == 1; }
};

// Parses a mean file; the format is told by its content (NumPy's magic string, else a BlobProto). Layouts:
// BlobProto (num, channels, height, width) or `shape` with num = 1; .npy (C,), (H, W, C) as in the seed's
// unitary_mean.npy example, (C, H, W) when the last dimension is not a channel count (1 or 3) and the first
// is, or any of those with leading 1s. Throws Error(kInvalidArgument, "mean_file", ...) for anything else.
MeanImage parse_mean_file(const uint8_t* data, std::size_t size);

}  // namespace sightd
