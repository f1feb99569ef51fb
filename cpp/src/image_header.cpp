// The core's own header parser: format detection, JPEG, PNG and WebP here; BMP, TIFF and PNM in
// image_header_raster.cpp. It reads only what it needs (format, size, orientation, sample layout) with
// bounds-checked reads; every loop advances through the input, so hostile bytes cost at most one pass.
#include "image_header.hpp"

#include <climits>
#include <string>

#include "byte_view.hpp"
#include "sightd/error.hpp"
#include "tiff_ifd.hpp"

namespace sightd {

namespace detail {

void throw_invalid_image(const std::string& message) { throw Error(ErrorCode::kInvalidImage, message); }

void set_size(HeaderDetails& d, uint64_t width, uint64_t height, const char* format) {
  if (width == 0 || height == 0) {
    throw_invalid_image(std::string("corrupt ") + format + " header: zero width or height");
  }
  if (width > INT_MAX || height > INT_MAX) {
    throw_invalid_image(std::string("corrupt ") + format + " header: width or height beyond 2^31 - 1");
  }
  d.header.width = static_cast<int>(width);
  d.header.height = static_cast<int>(height);
}

namespace {

// --- JPEG ---------------------------------------------------------------------------------------------

bool is_jpeg_frame_marker(uint32_t marker) {
  return marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
}

HeaderDetails parse_jpeg(ByteView v) {
  HeaderDetails d;
  d.header.format = ImageFormat::kJpeg;
  bool have_frame = false;
  bool have_exif = false;
  std::size_t pos = 2;
  while (pos < v.size()) {
    // libjpeg skips garbage before a marker (with a warning); so does the parser, one byte at a time.
    if (v.data()[pos] != 0xFF) {
      ++pos;
      continue;
    }
    while (pos < v.size() && v.data()[pos] == 0xFF) ++pos;  // fill bytes
    if (pos >= v.size()) break;
    const uint32_t marker = v.data()[pos++];
    if (marker == 0x00 || marker == 0x01 || marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7)) continue;
    if (marker == 0xD9) break;
    uint32_t length = 0;
    if (!v.u16(pos, false, length)) break;
    if (length < 2) throw_invalid_image("corrupt JPEG: a marker segment is shorter than its length field");
    const ByteView segment = v.sub(pos + 2, length - 2);
    if (marker == 0xDA) {
      if (!have_frame) throw_invalid_image("corrupt JPEG: a scan comes before the frame header");
      d.jpeg_first_scan = pos - 2;
      return d;
    }
    if (is_jpeg_frame_marker(marker) && !have_frame) {
      uint32_t precision = 0;
      uint32_t height = 0;
      uint32_t width = 0;
      uint32_t components = 0;
      if (!segment.u8(0, precision) || !segment.u16(1, false, height) || !segment.u16(3, false, width) ||
          !segment.u8(5, components)) {
        break;
      }
      if (height == 0) throw_invalid_image("unsupported JPEG: the height is defined by a later DNL marker");
      set_size(d, width, height, "JPEG");
      if (components != 1 && components != 3 && components != 4) {
        throw_invalid_image("unsupported JPEG: " + std::to_string(components) + " colour components");
      }
      d.header.channels = components == 1 ? 1 : 3;  // CMYK and YCCK are colour without alpha
      d.header.bit_depth = static_cast<int>(precision);
      have_frame = true;
    } else if (marker == 0xE1 && !have_exif && segment.equals(0, "Exif\0\0", 6)) {
      have_exif = true;
      d.header.orientation = exif_orientation(segment.sub(6, segment.size()));
    }
    pos += length;
  }
  if (!have_frame) throw_invalid_image("truncated or corrupt JPEG: no frame header before the end of the data");
  return d;  // a frame but no scan: decode_image reports the truncation
}

// --- PNG ----------------------------------------------------------------------------------------------

HeaderDetails parse_png(ByteView v) {
  HeaderDetails d;
  d.header.format = ImageFormat::kPng;
  uint32_t length = 0;
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t depth = 0;
  uint32_t colour = 0;
  if (!v.u32(8, false, length) || !v.equals(12, "IHDR", 4) || !v.u32(16, false, width) ||
      !v.u32(20, false, height) || !v.u8(24, depth) || !v.u8(25, colour)) {
    throw_invalid_image("truncated or corrupt PNG: no complete IHDR chunk");
  }
  if (length != 13) throw_invalid_image("corrupt PNG: IHDR chunk of the wrong length");
  set_size(d, width, height, "PNG");
  bool valid = false;
  switch (colour) {
    case 0: valid = depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16; break;
    case 3: valid = depth == 1 || depth == 2 || depth == 4 || depth == 8; break;
    case 2:
    case 4:
    case 6: valid = depth == 8 || depth == 16; break;
    default: break;
  }
  if (!valid) throw_invalid_image("corrupt PNG: invalid bit depth and colour type combination");
  static constexpr int kChannels[7] = {1, 0, 3, 3, 2, 0, 4};
  d.header.channels = kChannels[colour];
  d.header.bit_depth = colour == 3 ? 8 : static_cast<int>(depth);

  // Ancillary chunks before the image data: transparency and EXIF.
  uint64_t pos = 33;
  while (v.has(static_cast<std::size_t>(pos), 8)) {
    const auto at = static_cast<std::size_t>(pos);
    uint32_t chunk_length = 0;
    v.u32(at, false, chunk_length);
    if (v.equals(at + 4, "IDAT", 4) || v.equals(at + 4, "IEND", 4)) break;
    if (v.equals(at + 4, "tRNS", 4) && (colour == 2 || colour == 3)) d.header.channels = 4;
    if (v.equals(at + 4, "eXIf", 4)) {
      ByteView exif = v.sub(at + 8, chunk_length);
      if (exif.equals(0, "Exif\0\0", 6)) exif = exif.sub(6, exif.size());
      d.header.orientation = exif_orientation(exif);
    }
    pos += uint64_t{12} + chunk_length;
  }
  return d;
}

// --- WebP ---------------------------------------------------------------------------------------------

HeaderDetails parse_webp(ByteView v) {
  HeaderDetails d;
  d.header.format = ImageFormat::kWebp;
  uint32_t width = 0;
  uint32_t height = 0;
  if (v.equals(12, "VP8 ", 4)) {
    uint32_t tag = 0;
    if (!v.u8(20, tag) || !v.u16(26, true, width) || !v.u16(28, true, height)) {
      throw_invalid_image("truncated WebP header");
    }
    if ((tag & 1) != 0 || !v.equals(23, "\x9d\x01\x2a", 3)) {
      throw_invalid_image("corrupt WebP: the VP8 bitstream does not start with a key frame");
    }
    width &= 0x3FFF;
    height &= 0x3FFF;
    d.header.channels = 3;
  } else if (v.equals(12, "VP8L", 4)) {
    uint32_t signature = 0;
    uint32_t bits = 0;
    if (!v.u8(20, signature) || !v.u32(21, true, bits)) throw_invalid_image("truncated WebP header");
    if (signature != 0x2F) throw_invalid_image("corrupt WebP: bad lossless signature");
    width = (bits & 0x3FFF) + 1;
    height = (bits >> 14 & 0x3FFF) + 1;
    d.header.channels = (bits >> 28 & 1) != 0 ? 4 : 3;
  } else if (v.equals(12, "VP8X", 4)) {
    uint32_t flags = 0;
    if (!v.u8(20, flags) || !v.u24le(24, width) || !v.u24le(27, height)) {
      throw_invalid_image("truncated WebP header");
    }
    if ((flags & 0x02) != 0) throw_invalid_image("unsupported WebP: animations are not decoded");
    width += 1;
    height += 1;
    d.header.channels = (flags & 0x10) != 0 ? 4 : 3;
    // Chunks after VP8X, each padded to an even size, until the EXIF chunk or the end of the data.
    uint64_t pos = 30;
    while ((flags & 0x08) != 0 && v.has(static_cast<std::size_t>(pos), 8)) {
      const auto at = static_cast<std::size_t>(pos);
      uint32_t chunk_size = 0;
      v.u32(at + 4, true, chunk_size);
      if (v.equals(at, "EXIF", 4)) {
        ByteView exif = v.sub(at + 8, chunk_size);
        if (exif.equals(0, "Exif\0\0", 6)) exif = exif.sub(6, exif.size());
        d.header.orientation = exif_orientation(exif);
        break;
      }
      pos += uint64_t{8} + chunk_size + (chunk_size & 1);
    }
  } else if (v.size() < 16) {
    throw_invalid_image("truncated WebP header");
  } else {
    throw_invalid_image("corrupt WebP: unknown first chunk");
  }
  set_size(d, width, height, "WebP");
  return d;
}

}  // namespace

HeaderDetails parse_image_header(const uint8_t* data, std::size_t size) {
  if (data == nullptr || size == 0) throw_invalid_image("empty image data");
  const ByteView v(data, size);
  if (v.equals(0, "\xFF\xD8\xFF", 3)) return parse_jpeg(v);
  if (v.equals(0, "\x89PNG\r\n\x1a\n", 8)) return parse_png(v);
  if (v.equals(0, "BM", 2)) return parse_bmp(v);
  if (v.equals(0, "RIFF", 4) && v.equals(8, "WEBP", 4)) return parse_webp(v);
  if (v.equals(0, "II*\0", 4) || v.equals(0, "MM\0*", 4) || v.equals(0, "II+\0", 4) || v.equals(0, "MM\0+", 4)) {
    return parse_tiff(v);
  }
  if (size >= 3 && data[0] == 'P' && data[1] >= '1' && data[1] <= '6' && is_pnm_space(data[2])) {
    return parse_pnm(v);
  }
  if (size < 12) throw_invalid_image("truncated image data (" + std::to_string(size) + " bytes)");
  throw_invalid_image("unrecognised image format (JPEG, PNG, BMP, WebP, TIFF and PNM are supported)");
}

}  // namespace detail

const char* image_format_name(ImageFormat format) noexcept {
  switch (format) {
    case ImageFormat::kJpeg: return "jpeg";
    case ImageFormat::kPng: return "png";
    case ImageFormat::kBmp: return "bmp";
    case ImageFormat::kWebp: return "webp";
    case ImageFormat::kTiff: return "tiff";
    case ImageFormat::kPnm: return "pnm";
  }
  return "unknown";
}

ImageHeader read_image_header(const uint8_t* data, std::size_t size) {
  return detail::parse_image_header(data, size).header;
}

void check_pixel_limit(const ImageHeader& header, const DecodeOptions& options) {
  if (options.max_pixels <= 0) throw_invalid_argument("max_pixels", "must be positive");
  const int64_t pixels = int64_t{header.width} * int64_t{header.height};
  if (pixels > options.max_pixels) {
    throw Error(ErrorCode::kImageTooLarge, "image of " + std::to_string(header.width) + "x" +
                                               std::to_string(header.height) + " pixels exceeds the limit of " +
                                               std::to_string(options.max_pixels) + " pixels");
  }
}

}  // namespace sightd
