// Decoding encoded image bytes (JPEG, PNG, BMP, WebP, TIFF, PNM) into 8-bit BGR pixels: JPEG with
// libjpeg-turbo, the other formats with OpenCV.
//
// The header is parsed by the core itself first: the format, the size and the EXIF orientation are known
// before any pixel is decoded, so decompression bombs are refused cheaply and the pipeline can plan tensor
// shapes and pick a reduced JPEG decoding scale.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace sightd {

enum class ImageFormat { kJpeg, kPng, kBmp, kWebp, kTiff, kPnm };
const char* image_format_name(ImageFormat format) noexcept;  // "jpeg", "png", ...

struct ImageHeader {
  ImageFormat format = ImageFormat::kJpeg;
  int width = 0;        // as stored, before orientation
  int height = 0;
  int orientation = 1;  // EXIF orientation 1..8 (1 when absent, unknown or unreadable)
  int channels = 0;     // as stored: 1 (grey), 2 (grey + alpha), 3 (colour, CMYK included), 4 (colour + alpha)
  int bit_depth = 8;    // bits per sample as stored (1 for bilevel, 16, 32 for float TIFF; palettes: 8)

  // Size after the orientation is applied (orientations 5..8 swap width and height).
  int oriented_width() const noexcept { return orientation >= 5 ? height : width; }
  int oriented_height() const noexcept { return orientation >= 5 ? width : height; }
};

struct DecodeOptions {
  // Largest width * height accepted, checked from the header before decoding.
  int64_t max_pixels = 100'000'000;
  // Colour under transparent pixels: images with alpha are composited over it (B, G, R).
  uint8_t background_b = 255;
  uint8_t background_g = 255;
  uint8_t background_r = 255;
};

// Reads the format, size, orientation and sample layout from the first bytes. Throws Error(kInvalidImage)
// for empty, unrecognised, corrupt or truncated headers, Error(kImageTooLarge) never (see check_pixel_limit).
// Bounds-checked and linear in the input size at worst, whatever the bytes.
ImageHeader read_image_header(const uint8_t* data, std::size_t size);

// Throws Error(kImageTooLarge) when the header's width * height exceeds options.max_pixels
// (Error(kInvalidArgument, "max_pixels") when that is not positive).
void check_pixel_limit(const ImageHeader& header, const DecodeOptions& options);

struct DecodedImage {
  cv::Mat bgr;          // CV_8UC3, orientation applied, alpha composited, 16-bit and grey converted
  int reduction = 1;    // JPEG DCT scaling used (1, 2, 4 or 8): bgr is about 1/reduction of the full size
  ImageHeader header;
  // JPEG: libjpeg's corrupt-data warnings on an image that still decoded ("Corrupt JPEG data: 3 extraneous
  // bytes before marker 0xd9"), distinct messages, at most 4; never printed. Empty for the other formats.
  std::vector<std::string> warnings;
};

// Decodes to 8-bit BGR. `min_width` and `min_height` (in oriented pixels; 0 = no bound; both 0 = full
// resolution) allow a JPEG to be decoded at 1/2, 1/4 or 1/8 scale by libjpeg's DCT scaling, choosing the
// largest reduction that keeps the decoded image at least that large (ceil(size / reduction) pixels); other
// formats always decode at full resolution. Throws Error(kInvalidImage) (also for a truncated JPEG: one
// whose data ends before its end-of-image marker) / Error(kImageTooLarge) / Error(kInvalidArgument) for
// negative minimum sizes; never crashes on hostile bytes. Conversions and limits: docs/images.md.
DecodedImage decode_image(const uint8_t* data, std::size_t size, const DecodeOptions& options,
                          int min_width = 0, int min_height = 0);

}  // namespace sightd
