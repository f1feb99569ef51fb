// Regions of interest: normalised coordinates -> a pixel rectangle of the decoded image (docs/images.md
// gives the rounding), polygon masking, then uniform background trimming.
#include "sightd/roi.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>


#include "sightd/error.hpp"

namespace sightd {

namespace {

// Tolerance, in pixels, on the scaled coordinate before rounding: 0.7 * 10 is 7.000000000000001 in binary
// floating point and must still end the crop at pixel 7.
constexpr double kRoundingSlack = 1e-6;
// Smallest polygon area (normalised units) that counts as an area rather than a line or a point.
constexpr double kMinPolygonArea = 1e-12;

void check_unit(double value, const std::string& field) {
  if (!std::isfinite(value)) throw_invalid_argument(field, "must be a finite number");
  if (value < 0.0 || value > 1.0) throw_invalid_argument(field, "must be within [0, 1]");
}

// [begin, end) in pixels of a normalised span [low, high] over `size` pixels: floor / ceil, at least one
// pixel, inside the image.
std::pair<int, int> pixel_span(double low, double high, int size) {
  const double lo = std::floor(low * size + kRoundingSlack);
  const double hi = std::ceil(high * size - kRoundingSlack);
  const int begin = static_cast<int>(std::clamp(lo, 0.0, static_cast<double>(size - 1)));
  const int end = std::max(static_cast<int>(std::clamp(hi, 0.0, static_cast<double>(size))), begin + 1);
  return {begin, end};
}

cv::Rect pixel_rect(double xmin, double ymin, double xmax, double ymax, const cv::Mat& image) {
  const auto [x0, x1] = pixel_span(xmin, xmax, image.cols);
  const auto [y0, y1] = pixel_span(ymin, ymax, image.rows);
  return {x0, y0, x1 - x0, y1 - y0};
}

uint8_t round_channel(double value) { return static_cast<uint8_t>(std::clamp(std::floor(value + 0.5), 0.0, 255.0)); }

// The pixels of `crop` (at `rect` in the image) whose centre lies inside the polygon, by the even-odd rule:
// on each row, the polygon's edges cross the line through the pixel centres at sorted x positions, and the
// spans between the 1st and 2nd, 3rd and 4th... crossings are inside. A centre exactly on a crossing counts
// for the span it starts, not the one it ends. Written here rather than with cv::fillPoly, whose edge
// pixels changed between OpenCV releases (4.6 and 4.8+ disagree on concave polygons).
cv::Mat polygon_mask(const cv::Size& crop, const cv::Rect& rect, const cv::Size& image_size,
                     const std::vector<NormalizedPoint>& polygon) {
  std::vector<double> xs;
  std::vector<double> ys;
  for (const NormalizedPoint& p : polygon) {
    xs.push_back(p.x * image_size.width - rect.x);  // pixel (c, r) spans [c, c + 1) x [r, r + 1)
    ys.push_back(p.y * image_size.height - rect.y);
  }
  cv::Mat mask(crop, CV_8UC1, cv::Scalar(0));
  std::vector<double> crossings;
  const std::size_t n = polygon.size();
  for (int row = 0; row < crop.height; ++row) {
    const double centre = row + 0.5;
    crossings.clear();
    for (std::size_t i = 0, j = n - 1; i < n; j = i++) {
      if ((ys[i] <= centre) != (ys[j] <= centre)) {
        crossings.push_back(xs[j] + (centre - ys[j]) * (xs[i] - xs[j]) / (ys[i] - ys[j]));
      }
    }
    std::sort(crossings.begin(), crossings.end());
    uint8_t* line = mask.ptr<uint8_t>(row);
    for (std::size_t k = 0; k + 1 < crossings.size(); k += 2) {
      // Columns c with crossings[k] <= c + 0.5 < crossings[k + 1].
      const double first = std::max(0.0, std::ceil(crossings[k] - 0.5));
      const double end = std::min(static_cast<double>(crop.width), std::ceil(crossings[k + 1] - 0.5));
      for (int c = static_cast<int>(first); c < static_cast<int>(end); ++c) line[c] = 255;
    }
  }
  return mask;
}

// The crop with the pixels outside the polygon set to the fill colour, or to the mean colour of those
// inside (of the whole crop when no pixel centre is inside).
cv::Mat mask_polygon(const cv::Mat& crop, const cv::Rect& rect, const cv::Size& image_size,
                     const std::vector<NormalizedPoint>& polygon, const std::optional<cv::Scalar>& fill) {
  const cv::Mat inside = polygon_mask(crop.size(), rect, image_size, polygon);
  cv::Scalar colour;
  if (fill) {
    colour = *fill;
  } else {
    colour = cv::countNonZero(inside) > 0 ? cv::mean(crop, inside) : cv::mean(crop);
  }
  const cv::Scalar rounded(round_channel(colour[0]), round_channel(colour[1]), round_channel(colour[2]));
  cv::Mat outside;
  cv::bitwise_not(inside, outside);
  cv::Mat out = crop.clone();
  out.setTo(rounded, outside);
  return out;
}

// The bounding box of the pixels that differ from the top-left pixel by more than `tolerance` in some
// channel; the whole image when there is none.
cv::Rect trim_uniform(const cv::Mat& image, int tolerance) {
  const uint8_t* ref = image.ptr<uint8_t>(0);
  const int r0 = ref[0];
  const int r1 = ref[1];
  const int r2 = ref[2];
  const auto differs = [&](const uint8_t* p) {
    return std::abs(p[0] - r0) > tolerance || std::abs(p[1] - r1) > tolerance || std::abs(p[2] - r2) > tolerance;
  };
  const auto uniform_row = [&](int y) {
    const uint8_t* p = image.ptr<uint8_t>(y);
    for (int x = 0; x < image.cols; ++x, p += 3) {
      if (differs(p)) return false;
    }
    return true;
  };
  int top = 0;
  while (top < image.rows && uniform_row(top)) ++top;
  if (top == image.rows) return {0, 0, image.cols, image.rows};
  int bottom = image.rows - 1;
  while (uniform_row(bottom)) --bottom;  // stops at `top` at the latest
  int left = image.cols;
  int right = -1;
  for (int y = top; y <= bottom; ++y) {
    const uint8_t* row = image.ptr<uint8_t>(y);
    for (int x = 0; x < left; ++x) {
      if (differs(row + 3 * x)) {
        left = x;
        break;
      }
    }
    for (int x = image.cols - 1; x > right; --x) {
      if (differs(row + 3 * x)) {
        right = x;
        break;
      }
    }
  }
  return {left, top, right - left + 1, bottom - top + 1};
}

}  // namespace

void validate_roi(const Roi& roi) {
  if (roi.has_bbox && !roi.polygon.empty()) {
    throw_invalid_argument("polygon", "bbox and polygon cannot be given together");
  }
  if (roi.has_bbox) {
    const BoundingBox& b = roi.bbox;
    check_unit(b.xmin, "bbox.xmin");
    check_unit(b.ymin, "bbox.ymin");
    check_unit(b.xmax, "bbox.xmax");
    check_unit(b.ymax, "bbox.ymax");
    if (b.xmax <= b.xmin) throw_invalid_argument("bbox.xmax", "must be greater than bbox.xmin");
    if (b.ymax <= b.ymin) throw_invalid_argument("bbox.ymax", "must be greater than bbox.ymin");
  }
  if (!roi.polygon.empty()) {
    if (roi.polygon.size() < 3) throw_invalid_argument("polygon", "needs at least 3 points");
    double twice_area = 0.0;
    for (std::size_t i = 0; i < roi.polygon.size(); ++i) {
      const NormalizedPoint& p = roi.polygon[i];
      const std::string field = "polygon[" + std::to_string(i) + "]";
      check_unit(p.x, field + ".x");
      check_unit(p.y, field + ".y");
      const NormalizedPoint& q = roi.polygon[(i + 1) % roi.polygon.size()];
      twice_area += p.x * q.y - q.x * p.y;
    }
    if (std::abs(twice_area) / 2 < kMinPolygonArea) throw_invalid_argument("polygon", "has no area");
  }
  if (roi.uniform_tolerance < 0 || roi.uniform_tolerance > 255) {
    throw_invalid_argument("uniform_tolerance", "must be within 0..255");
  }
}

RoiResult apply_roi(const cv::Mat& bgr, const Roi& roi, const std::optional<cv::Scalar>& fill) {
  if (bgr.empty() || bgr.type() != CV_8UC3) {
    throw_invalid_argument("image", "must be a non-empty 8-bit image with 3 channels");
  }
  validate_roi(roi);
  if (fill && !(std::isfinite((*fill)[0]) && std::isfinite((*fill)[1]) && std::isfinite((*fill)[2]))) {
    throw_invalid_argument("fill", "must be finite numbers");
  }
  cv::Rect rect(0, 0, bgr.cols, bgr.rows);
  cv::Mat image = bgr;
  if (roi.has_bbox) {
    rect = pixel_rect(roi.bbox.xmin, roi.bbox.ymin, roi.bbox.xmax, roi.bbox.ymax, bgr);
    image = bgr(rect);
  } else if (!roi.polygon.empty()) {
    double xmin = 1.0;
    double ymin = 1.0;
    double xmax = 0.0;
    double ymax = 0.0;
    for (const NormalizedPoint& p : roi.polygon) {
      xmin = std::min(xmin, p.x);
      ymin = std::min(ymin, p.y);
      xmax = std::max(xmax, p.x);
      ymax = std::max(ymax, p.y);
    }
    rect = pixel_rect(xmin, ymin, xmax, ymax, bgr);
    image = mask_polygon(bgr(rect), rect, bgr.size(), roi.polygon, fill);
  }
  if (roi.crop_uniform_background) {
    const cv::Rect trimmed = trim_uniform(image, roi.uniform_tolerance);
    image = image(trimmed);
    rect = cv::Rect(rect.x + trimmed.x, rect.y + trimmed.y, trimmed.width, trimmed.height);
  }
  RoiResult result;
  result.image = image;
  result.transform.image_width = bgr.cols;
  result.transform.image_height = bgr.rows;
  result.transform.crop_x = rect.x;
  result.transform.crop_y = rect.y;
  result.transform.crop_width = rect.width;
  result.transform.crop_height = rect.height;
  return result;
}

}  // namespace sightd
