// Decoding after the core's own header checks: JPEG with libjpeg-turbo directly (jpeg_decode.cpp), the other
// formats with OpenCV's imgcodecs. OpenCV never sees bytes the header parser did not recognise (so its other
// decoders, e.g. OpenEXR or Radiance, are unreachable), nor an image over the pixel limit. Orientation is
// always applied here, never by a decoder, so it is the same for every format.
#include <algorithm>
#include <climits>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "byte_view.hpp"
#include "image_header.hpp"
#include "jpeg_decode.hpp"
#include "sightd/error.hpp"
#include "sightd/image.hpp"

namespace sightd {

namespace {

using detail::throw_invalid_image;

const char* display_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg: return "JPEG";
    case ImageFormat::kPng: return "PNG";
    case ImageFormat::kBmp: return "BMP";
    case ImageFormat::kWebp: return "WebP";
    case ImageFormat::kTiff: return "TIFF";
    case ImageFormat::kPnm: return "PNM";
  }
  return "image";
}

// The largest DCT reduction keeping the oriented image at least min_width x min_height (0: no bound).
int jpeg_reduction(const ImageHeader& header, int min_width, int min_height) {
  if (min_width <= 0 && min_height <= 0) return 1;
  const int64_t width = header.oriented_width();
  const int64_t height = header.oriented_height();
  for (int reduction : {8, 4, 2}) {
    if ((width + reduction - 1) / reduction >= min_width && (height + reduction - 1) / reduction >= min_height) {
      return reduction;
    }
  }
  return 1;
}

cv::Mat imdecode_or_throw(const uint8_t* data, std::size_t size, int flags, ImageFormat format) {
  cv::Mat result;
  try {
    // imdecode only reads the buffer; wrapping it avoids copying the encoded bytes.
    const cv::Mat buffer(1, static_cast<int>(size), CV_8UC1, const_cast<uint8_t*>(data));
    result = cv::imdecode(buffer, flags);
  } catch (const cv::Exception& e) {
    // OpenCV's own limits (CV_IO_MAX_IMAGE_PIXELS...) and decoder failures land here.
    throw_invalid_image(std::string("could not decode the ") + display_name(format) + " image: " + e.err);
  }
  if (result.empty()) {
    throw_invalid_image(std::string("could not decode the ") + display_name(format) +
                        " image: its data is corrupt, truncated or uses an unsupported feature");
  }
  return result;
}

// Alpha compositing over the background, in 8 bits: round((c * a + background * (255 - a)) / 255), or for
// premultiplied colours min(255, c + round(background * (255 - a) / 255)).
cv::Mat composite(const cv::Mat& src, const DecodeOptions& options, bool premultiplied) {
  const uint32_t background[3] = {options.background_b, options.background_g, options.background_r};
  const int channels = src.channels();  // 2: grey + alpha, 4: BGRA
  cv::Mat out(src.rows, src.cols, CV_8UC3);
  for (int y = 0; y < src.rows; ++y) {
    const uint8_t* s = src.ptr<uint8_t>(y);
    uint8_t* d = out.ptr<uint8_t>(y);
    for (int x = 0; x < src.cols; ++x, s += channels, d += 3) {
      const uint32_t alpha = s[channels - 1];
      const uint32_t rest = 255 - alpha;
      for (int c = 0; c < 3; ++c) {
        const uint32_t colour = s[channels == 2 ? 0 : c];
        d[c] = static_cast<uint8_t>(premultiplied ? std::min(255u, colour + (background[c] * rest + 127) / 255)
                                                  : (colour * alpha + background[c] * rest + 127) / 255);
      }
    }
  }
  return out;
}

// Any depth and layout imdecode(IMREAD_UNCHANGED) returns -> 8-bit BGR.
cv::Mat to_bgr8(cv::Mat raw, const DecodeOptions& options, ImageFormat format, bool premultiplied) {
  cv::Mat eight;
  switch (raw.depth()) {
    case CV_8U: eight = raw; break;
    case CV_16U: raw.convertTo(eight, CV_8U, 1.0 / 257.0); break;  // round(v / 257): 65535 -> 255
    case CV_32F: {  // floating-point samples are in [0, 1]; NaN counts as 0, out of range saturates
      cv::patchNaNs(raw, 0.0);  // in place: the decoder's own buffer
      raw.convertTo(eight, CV_8U, 255.0);
      break;
    }
    default:
      throw_invalid_image(std::string("unsupported ") + display_name(format) + " sample type (OpenCV depth " +
                          std::to_string(raw.depth()) + ")");
  }
  switch (eight.channels()) {
    case 1: {
      cv::Mat bgr;
      cv::cvtColor(eight, bgr, cv::COLOR_GRAY2BGR);
      return bgr;
    }
    case 3: return eight;
    case 2:
    case 4: return composite(eight, options, premultiplied);
    default:
      throw_invalid_image(std::string("unsupported ") + display_name(format) + " layout of " +
                          std::to_string(eight.channels()) + " channels");
  }
}

// EXIF orientation 1..8 -> the image as it is meant to be displayed.
cv::Mat apply_orientation(const cv::Mat& image, int orientation) {
  cv::Mat out;
  switch (orientation) {
    case 2: cv::flip(image, out, 1); return out;
    case 3: cv::flip(image, out, -1); return out;
    case 4: cv::flip(image, out, 0); return out;
    case 5: cv::transpose(image, out); return out;
    case 6: cv::rotate(image, out, cv::ROTATE_90_CLOCKWISE); return out;
    case 7: {
      cv::Mat transposed;
      cv::transpose(image, transposed);
      cv::flip(transposed, out, -1);
      return out;
    }
    case 8: cv::rotate(image, out, cv::ROTATE_90_COUNTERCLOCKWISE); return out;
    default: return image;
  }
}

}  // namespace

DecodedImage decode_image(const uint8_t* data, std::size_t size, const DecodeOptions& options, int min_width,
                          int min_height) {
  if (min_width < 0) throw_invalid_argument("min_width", "must be >= 0");
  if (min_height < 0) throw_invalid_argument("min_height", "must be >= 0");
  const detail::HeaderDetails details = detail::parse_image_header(data, size);
  const ImageHeader& header = details.header;
  check_pixel_limit(header, options);
  const char* name = display_name(header.format);
  if (size > static_cast<std::size_t>(INT_MAX)) throw_invalid_image("image data larger than 2 GiB");
  if (!details.unsupported.empty()) {
    throw_invalid_image(std::string("unsupported ") + name + ": " + details.unsupported);
  }
  if (details.min_size > size) {
    throw_invalid_image(std::string("truncated ") + name + ": " + std::to_string(size) +
                        " bytes where the header needs at least " + std::to_string(details.min_size));
  }

  DecodedImage out;
  out.header = header;
  cv::Mat decoded;
  if (header.format == ImageFormat::kJpeg) {
    out.reduction = jpeg_reduction(header, min_width, min_height);
    decoded = detail::decode_jpeg(data, size, details, out.reduction, out.warnings);
  } else {
    const uint8_t* source = data;
    std::vector<uint8_t> patched;
    if (details.tiff_orientation_offset != 0) {
      // OpenCV's 8-bit TIFF path (libtiff's RGBA interface) applies the Orientation tag itself, partly, and
      // its 16-bit path does not: decoding a copy whose tag says 1 gives the pixels as stored, every time.
      patched.assign(data, data + size);
      std::fill_n(patched.begin() + static_cast<std::ptrdiff_t>(details.tiff_orientation_offset),
                  details.tiff_orientation_width, uint8_t{0});
      const std::size_t low = details.tiff_little_endian
                                  ? details.tiff_orientation_offset
                                  : details.tiff_orientation_offset + details.tiff_orientation_width - 1;
      patched[low] = 1;
      source = patched.data();
    }
    decoded = imdecode_or_throw(source, size, cv::IMREAD_UNCHANGED, header.format);
    if (decoded.cols != header.width || decoded.rows != header.height) {
      throw_invalid_image(std::string("corrupt ") + name + ": the decoded size differs from the header's");
    }
    decoded = to_bgr8(decoded, options, header.format, details.premultiplied_alpha);
  }
  out.bgr = apply_orientation(decoded, header.orientation);
  return out;
}

}  // namespace sightd
