// What the header parser learns beyond the public ImageHeader, for the decoder's own checks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "byte_view.hpp"
#include "sightd/image.hpp"

namespace sightd::detail {

struct HeaderDetails {
  ImageHeader header;
  // Smallest input size that can hold every pixel of an uncompressed layout (binary PNM, uncompressed BMP):
  // shorter data is truncated. 0 when the header cannot tell (compressed or ASCII data).
  uint64_t min_size = 0;
  std::size_t jpeg_first_scan = 0;          // JPEG: offset of the first SOS marker
  // TIFF: where the inline Orientation value lies (offset, 2 or 4 bytes, byte order); offset 0 when none.
  std::size_t tiff_orientation_offset = 0;
  std::size_t tiff_orientation_width = 0;
  bool tiff_little_endian = true;
  // The colour samples OpenCV returns are already multiplied by alpha: TIFF's associated alpha, or its
  // unassociated alpha in 8 bits (libtiff's RGBA interface, which OpenCV uses there, premultiplies it).
  bool premultiplied_alpha = false;
  // Why a well-formed header describes pixels the decoder refuses ("signed integer samples"); empty if none.
  std::string unsupported;
};

// The work of read_image_header; throws Error(kInvalidImage) with a message naming the format.
HeaderDetails parse_image_header(const uint8_t* data, std::size_t size);

[[noreturn]] void throw_invalid_image(const std::string& message);

// Shared by the parsers of image_header.cpp and image_header_raster.cpp.
void set_size(HeaderDetails& d, uint64_t width, uint64_t height, const char* format);
bool is_pnm_space(uint8_t c);
HeaderDetails parse_bmp(ByteView v);
HeaderDetails parse_tiff(ByteView v);
HeaderDetails parse_pnm(ByteView v);

}  // namespace sightd::detail
