// Header parsers of the raster formats: BMP, TIFF and PNM (JPEG, PNG and WebP: image_header.cpp).
#include <climits>
#include <string>

#include "byte_view.hpp"
#include "image_header.hpp"
#include "tiff_ifd.hpp"

namespace sightd::detail {

bool is_pnm_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

namespace {

// Compression schemes libtiff decodes here. OpenCV 4.6 turns a strip libtiff cannot decode (an unknown or
// exotic scheme) into black pixels and success, so anything else is refused up front.
bool is_supported_tiff_compression(uint32_t scheme) {
  switch (scheme) {
    case 1:      // none
    case 2:      // CCITT modified Huffman RLE
    case 3:      // CCITT group 3 fax
    case 4:      // CCITT group 4 fax
    case 5:      // LZW
    case 6:      // old-style JPEG
    case 7:      // JPEG
    case 8:      // Adobe deflate
    case 32771:  // CCITT RLE, word-aligned
    case 32773:  // PackBits
    case 32946:  // deflate
    case 34925:  // LZMA
    case 50000:  // Zstandard
    case 50001:  // WebP
      return true;
    default: return false;
  }
}

// One PNM header number, after whitespace and comments; it must be followed by a whitespace byte.
uint32_t pnm_number(ByteView v, std::size_t& pos) {
  const uint8_t* p = v.data();
  for (;;) {
    if (pos >= v.size()) throw_invalid_image("truncated PNM header");
    if (is_pnm_space(p[pos])) {
      ++pos;
    } else if (p[pos] == '#') {
      while (pos < v.size() && p[pos] != '\n' && p[pos] != '\r') ++pos;
    } else {
      break;
    }
  }
  if (p[pos] < '0' || p[pos] > '9') throw_invalid_image("corrupt PNM header: a number was expected");
  uint64_t value = 0;
  for (; pos < v.size() && p[pos] >= '0' && p[pos] <= '9'; ++pos) {
    value = value * 10 + (p[pos] - '0');
    if (value > INT_MAX) throw_invalid_image("corrupt PNM header: number beyond 2^31 - 1");
  }
  if (pos >= v.size()) throw_invalid_image("truncated PNM header");
  if (!is_pnm_space(p[pos])) throw_invalid_image("corrupt PNM header: a number was expected");
  return static_cast<uint32_t>(value);
}

}  // namespace

// --- BMP ----------------------------------------------------------------------------------------------

HeaderDetails parse_bmp(ByteView v) {
  HeaderDetails d;
  d.header.format = ImageFormat::kBmp;
  uint32_t offset = 0;
  uint32_t info_size = 0;
  if (!v.u32(10, true, offset) || !v.u32(14, true, info_size)) throw_invalid_image("truncated BMP header");
  uint32_t raw_width = 0;
  uint32_t raw_height = 0;
  uint32_t bpp = 0;
  uint32_t compression = 0;
  int64_t width = 0;
  int64_t height = 0;
  std::size_t palette_entry = 4;
  if (info_size == 12) {  // OS/2 BITMAPCOREHEADER: unsigned 16-bit sizes
    if (!v.u16(18, true, raw_width) || !v.u16(20, true, raw_height) || !v.u16(24, true, bpp)) {
      throw_invalid_image("truncated BMP header");
    }
    width = raw_width;
    height = raw_height;
    palette_entry = 3;
  } else if (info_size >= 40 && info_size <= 124) {
    if (!v.u32(18, true, raw_width) || !v.u32(22, true, raw_height) || !v.u16(28, true, bpp) ||
        !v.u32(30, true, compression)) {
      throw_invalid_image("truncated BMP header");
    }
    width = static_cast<int32_t>(raw_width);
    height = static_cast<int32_t>(raw_height);  // negative: rows stored top-down
    if (height < 0) height = -height;
  } else {
    throw_invalid_image("unsupported BMP: info header of " + std::to_string(info_size) + " bytes");
  }
  if (width < 0) throw_invalid_image("corrupt BMP header: negative width");
  set_size(d, static_cast<uint64_t>(width), static_cast<uint64_t>(height), "BMP");
  if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32) {
    throw_invalid_image("unsupported BMP: " + std::to_string(bpp) + " bits per pixel");
  }
  const bool rle = (compression == 1 && bpp == 8) || (compression == 2 && bpp == 4);
  const bool bitfields = compression == 3 && (bpp == 16 || bpp == 32);
  if (compression != 0 && !rle && !bitfields) {
    throw_invalid_image("unsupported BMP compression " + std::to_string(compression) + " with " +
                        std::to_string(bpp) + " bits per pixel");
  }
  d.header.channels = 3;
  if (bpp <= 8) {  // a palette of greys decodes to one channel
    uint32_t used = 0;
    if (info_size >= 40) v.u32(46, true, used);
    const uint32_t full = 1u << bpp;
    const uint32_t entries = used == 0 || used > full ? full : used;
    const std::size_t palette = 14 + std::size_t{info_size};
    bool grey = v.has(palette, entries * palette_entry);
    for (uint32_t i = 0; grey && i < entries; ++i) {
      const uint8_t* p = v.data() + palette + i * palette_entry;
      grey = p[0] == p[1] && p[1] == p[2];
    }
    if (grey) d.header.channels = 1;
  } else if (bpp == 32 && bitfields && info_size >= 56) {
    uint32_t alpha_mask = 0;
    if (v.u32(66, true, alpha_mask) && alpha_mask != 0) d.header.channels = 4;
  }
  if (!rle) {
    const uint64_t stride = (static_cast<uint64_t>(width) * bpp + 31) / 32 * 4;
    d.min_size = uint64_t{offset} + stride * static_cast<uint64_t>(height);
  }
  return d;
}

// --- TIFF ---------------------------------------------------------------------------------------------

HeaderDetails parse_tiff(ByteView v) {
  HeaderDetails d;
  d.header.format = ImageFormat::kTiff;
  uint32_t magic = 0;
  if (v.u16(2, v.equals(0, "II", 2), magic) && magic == 43) throw_invalid_image("unsupported TIFF: BigTIFF");
  TiffIfd0 ifd;
  if (!read_tiff_ifd0(v, ifd)) throw_invalid_image("truncated or corrupt TIFF: the first directory is unreadable");
  if (!ifd.complete) throw_invalid_image("truncated TIFF: the first directory runs past the end of the data");
  if (!ifd.has_width || !ifd.has_height) throw_invalid_image("corrupt TIFF: no image width or length");
  set_size(d, ifd.width, ifd.height, "TIFF");
  if (ifd.samples_per_pixel == 0 || ifd.samples_per_pixel > 16 || ifd.bits_per_sample == 0 ||
      ifd.bits_per_sample > 64) {
    throw_invalid_image("corrupt TIFF: invalid samples per pixel or bits per sample");
  }
  if (!is_supported_tiff_compression(ifd.compression)) {
    throw_invalid_image("unsupported TIFF compression scheme " + std::to_string(ifd.compression));
  }
  if (ifd.sample_format == 2) d.unsupported = "signed integer samples";
  if (ifd.sample_format == 3 && ifd.bits_per_sample != 32) d.unsupported = "floating-point samples other than 32-bit";
  d.header.channels = static_cast<int>(ifd.samples_per_pixel);
  d.header.bit_depth = static_cast<int>(ifd.bits_per_sample);
  d.premultiplied_alpha = ifd.extra_samples == 1 || (ifd.extra_samples == 2 && ifd.bits_per_sample <= 8);
  // Only an orientation the decoder can neutralise counts (see image_decode.cpp); others are ignored.
  if (ifd.orientation >= 2 && ifd.orientation <= 8 && ifd.orientation_value_offset != 0) {
    d.header.orientation = static_cast<int>(ifd.orientation);
    d.tiff_orientation_offset = ifd.orientation_value_offset;
    d.tiff_orientation_width = ifd.orientation_value_width;
    d.tiff_little_endian = ifd.little_endian;
  }
  return d;
}

// --- PNM ----------------------------------------------------------------------------------------------

HeaderDetails parse_pnm(ByteView v) {
  HeaderDetails d;
  d.header.format = ImageFormat::kPnm;
  const int kind = v.data()[1] - '0';  // 1..3 ASCII, 4..6 binary; 1/4 bitmap, 2/5 grey, 3/6 colour
  std::size_t pos = 2;
  const uint32_t width = pnm_number(v, pos);
  const uint32_t height = pnm_number(v, pos);
  set_size(d, width, height, "PNM");
  const bool bitmap = kind == 1 || kind == 4;
  uint32_t maxval = 1;
  if (!bitmap) {
    maxval = pnm_number(v, pos);
    if (maxval == 0 || maxval > 65535) throw_invalid_image("corrupt PNM header: maxval outside 1..65535");
  }
  d.header.channels = kind == 3 || kind == 6 ? 3 : 1;
  d.header.bit_depth = bitmap ? 1 : maxval > 255 ? 16 : 8;
  const uint64_t data_offset = pos + 1;  // one whitespace byte ends the header
  const uint64_t w = width;
  const uint64_t h = height;
  if (kind == 4) d.min_size = data_offset + (w + 7) / 8 * h;
  if (kind == 5 || kind == 6) {
    d.min_size = data_offset + w * h * static_cast<uint64_t>(d.header.channels) * (maxval > 255 ? 2 : 1);
  }
  return d;
}

}  // namespace sightd::detail
