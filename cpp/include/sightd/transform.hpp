// The geometry an image went through between its decoded pixels and its slot in an input tensor, kept so
// that boxes found in tensor coordinates can be mapped back to normalised coordinates of the original image.
//
//   decoded image (image_width x image_height, EXIF orientation applied)
//     -> crop: roi bbox / polygon bounding box / uniform background trimming, a rectangle of the decoded image
//     -> resize by (scale_x, scale_y)
//     -> shift by (offset_x, offset_y): negative for a CROP resize (the part cut away), positive for padding
//        (letterbox, stride alignment)
//     -> tensor (tensor_width x tensor_height)
//
// So a tensor pixel coordinate tx maps back to image pixel crop_x + (tx - offset_x) / scale_x.
#pragma once

#include <algorithm>

namespace sightd {

struct Transform {
  int image_width = 0;   // decoded image, after orientation; the reference of normalised coordinates
  int image_height = 0;
  double crop_x = 0.0;   // the cropped rectangle, in image pixels
  double crop_y = 0.0;
  double crop_width = 0.0;
  double crop_height = 0.0;
  double scale_x = 1.0;  // resized size / cropped size
  double scale_y = 1.0;
  double offset_x = 0.0;  // tensor coordinate = resized coordinate + offset
  double offset_y = 0.0;
  int tensor_width = 0;
  int tensor_height = 0;

  // Tensor pixel coordinates -> normalised image coordinates (not clamped).
  double to_image_x(double tensor_x) const { return (crop_x + (tensor_x - offset_x) / scale_x) / image_width; }
  double to_image_y(double tensor_y) const { return (crop_y + (tensor_y - offset_y) / scale_y) / image_height; }
};

inline double clamp01(double v) { return std::min(1.0, std::max(0.0, v)); }

}  // namespace sightd
