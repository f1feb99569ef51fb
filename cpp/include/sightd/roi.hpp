// Regions of interest of a v0.7 image input: `bbox` (normalised xmin, ymin, xmax, ymax), `polygon`
// (normalised points; the image is cropped to its bounding box and pixels outside it are filled) and
// `crop_uniform_background` (uniform borders trimmed). They are applied to the decoded image before
// preprocessing, and recorded in the image's Transform.
#pragma once

#include <optional>
#include <vector>

#include <opencv2/core.hpp>

#include "sightd/transform.hpp"

namespace sightd {

struct NormalizedPoint {
  double x = 0.0;
  double y = 0.0;
};

struct BoundingBox {
  double xmin = 0.0;
  double ymin = 0.0;
  double xmax = 1.0;
  double ymax = 1.0;
};

struct Roi {
  bool has_bbox = false;
  BoundingBox bbox;
  std::vector<NormalizedPoint> polygon;  // empty: no polygon; else at least 3 points
  bool crop_uniform_background = false;
  // Largest per-channel difference from the reference colour for a border line to count as uniform.
  int uniform_tolerance = 8;
};

// Throws Error(kInvalidArgument) naming the field ("bbox.xmin", "polygon[2].y", "polygon") when a
// coordinate is not finite, outside [0, 1], a box is empty or inverted, a polygon has fewer than 3 points or
// no area, or both bbox and polygon are given.
void validate_roi(const Roi& roi);

struct RoiResult {
  cv::Mat image;     // a view into the decoded image, or a new image when polygon filling was needed
  Transform transform;  // image size and crop rectangle filled in; scale 1 and no offset
};

// Applies the roi to a decoded BGR image (validating it first). Pixels outside a polygon take `fill` (B, G, R,
// rounded and clamped to 0..255; the pipeline passes the network's mean colour, which preprocessing turns
// into zeros) or, without one, the mean colour of the pixels inside the polygon. The bbox or polygon is
// applied first, then background trimming inside it. Pixel rounding, the polygon's rasterisation and the
// trimming rule: docs/images.md. Throws Error(kInvalidArgument) for an image that is not non-empty CV_8UC3
// ("image") or a non-finite fill ("fill").
RoiResult apply_roi(const cv::Mat& bgr, const Roi& roi, const std::optional<cv::Scalar>& fill);

}  // namespace sightd
