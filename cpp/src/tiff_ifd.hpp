// The TIFF structure (byte order mark, first image file directory), shared by TIFF files and by EXIF blocks,
// which are TIFF-structured whatever the container (JPEG APP1, PNG eXIf, WebP EXIF).
#pragma once

#include <cstddef>
#include <cstdint>

#include "byte_view.hpp"

namespace sightd::detail {

struct TiffIfd0 {
  bool little_endian = true;
  bool complete = false;  // every entry the directory announces lies inside the bytes
  bool has_width = false;
  bool has_height = false;
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t samples_per_pixel = 1;  // TIFF defaults
  uint32_t bits_per_sample = 1;
  uint32_t compression = 1;
  uint32_t sample_format = 1;      // 1 unsigned integer, 2 signed integer, 3 floating point
  uint32_t orientation = 1;        // raw tag value (may be out of 1..8)
  uint32_t extra_samples = 0;      // first ExtraSamples value: 0 unspecified, 1 premultiplied alpha, 2 alpha
  // Offset, inside the parsed bytes, of the Orientation value when it is stored inline as one SHORT or LONG
  // (width 2 or 4); 0 when there is none. Lets the decoder neutralise the tag in a copy (image_decode.cpp).
  std::size_t orientation_value_offset = 0;
  std::size_t orientation_value_width = 0;
};

// Reads the header and the first directory. Returns false when the byte order mark, the magic number or the
// directory offset is wrong; otherwise fills `ifd` from the entries that lie inside the bytes (at most the
// number that fits, so the loop is bounded by the size of the input).
bool read_tiff_ifd0(ByteView tiff, TiffIfd0& ifd);

// EXIF orientation 1..8 of a TIFF-structured EXIF block; 1 when absent, out of range or unreadable (a
// damaged EXIF block never makes an image undecodable).
int exif_orientation(ByteView exif);

}  // namespace sightd::detail
