// JPEG decoding with libjpeg-turbo's libjpeg API, straight into the BGR output (docs/images.md, "JPEG").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "image_header.hpp"

namespace sightd::detail {

// Decodes the JPEG whose header the core has parsed (`details`, size already checked against the pixel
// limit) to CV_8UC3 BGR at 1/`reduction` scale (1, 2, 4 or 8; ceil(size / reduction) pixels), as stored
// (no orientation). Refuses data that ends before its end-of-image marker, more than 500 scans, and data that
// runs out before the image is complete; other corrupt-data warnings of libjpeg go to `warnings` (distinct
// messages, at most a few) and the image decodes as libjpeg makes it out. Throws Error(kInvalidImage).
cv::Mat decode_jpeg(const uint8_t* data, std::size_t size, const HeaderDetails& details, int reduction,
                    std::vector<std::string>& warnings);

}  // namespace sightd::detail
