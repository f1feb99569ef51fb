// Darknet region / YOLO layer outputs: [anchors x (5 + classes), height, width], channel-planar.
#include <algorithm>
#include <cmath>

#include "postprocess_internal.hpp"

namespace sightd::detail {

namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Below these logit margins a class cannot reach its floor; the exact score is computed past them only, so
// the margins (generous next to rounding) change the speed, never the result.
constexpr double kMargin = 1e-6;

}  // namespace

void decode_yolo(const YoloHeadInputs& in, Activation class_activation, const std::vector<int64_t>& label_classes,
                 const LabelFloors& floors, std::vector<double>& scratch, std::vector<Candidate>& out) {
  const std::size_t plane = in.height * in.width;
  // An empty grid may still declare a huge height or width: do not walk its rows.
  if (plane == 0) return;
  const std::size_t per_anchor = 5 + in.classes;
  const std::size_t labels = label_classes.size();
  const bool softmax = class_activation == Activation::kSoftmax;
  scratch.resize(labels);
  double* label_scores = scratch.data();
  for (std::size_t a = 0; a < in.anchor_count; ++a) {
    const float* base = in.data + a * per_anchor * plane;
    const double anchor_w = in.anchors[2 * a];
    const double anchor_h = in.anchors[2 * a + 1];
    for (std::size_t row = 0; row < in.height; ++row) {
      for (std::size_t col = 0; col < in.width; ++col) {
        const std::size_t cell = row * in.width + col;
        const double objectness = sigmoid(static_cast<double>(base[4 * plane + cell]));
        // Class probabilities are at most 1, so no label can pass when the objectness does not.
        if (!(objectness >= floors.lowest)) continue;
        const float* logits = base + 5 * plane + cell;
        bool any = false;
        if (in.classes == 0) {
          for (std::size_t k = 0; k < labels; ++k) {
            label_scores[k] = objectness;
            any = any || objectness >= floors.floor[k];
          }
        } else if (softmax) {
          double max_logit = -HUGE_VAL;
          for (std::size_t c = 0; c < in.classes; ++c) {
            max_logit = std::max(max_logit, static_cast<double>(logits[c * plane]));
          }
          // p = exp(l - max) / sum <= exp(l - max): labels whose logit is too far below the maximum fail.
          bool maybe = false;
          for (std::size_t k = 0; k < labels && !maybe; ++k) {
            const double l = static_cast<double>(logits[static_cast<std::size_t>(label_classes[k]) * plane]);
            maybe = !(l - max_logit < std::log(floors.floor[k] / objectness) - kMargin);
          }
          if (!maybe) continue;
          double sum = 0.0;
          for (std::size_t c = 0; c < in.classes; ++c) sum += std::exp(static_cast<double>(logits[c * plane]) - max_logit);
          for (std::size_t k = 0; k < labels; ++k) {
            const double l = static_cast<double>(logits[static_cast<std::size_t>(label_classes[k]) * plane]);
            label_scores[k] = objectness * (std::exp(l - max_logit) / sum);
            any = any || label_scores[k] >= floors.floor[k];
          }
        } else {
          for (std::size_t k = 0; k < labels; ++k) {
            const double l = static_cast<double>(logits[static_cast<std::size_t>(label_classes[k]) * plane]);
            // objectness * sigmoid(l) >= floor  <=>  l >= logit(floor / objectness)
            const double ratio = floors.floor[k] / objectness;
            if (ratio > 0.0 && ratio < 1.0 && l < std::log(ratio / (1.0 - ratio)) - kMargin) {
              label_scores[k] = -HUGE_VAL;
              continue;
            }
            label_scores[k] = objectness * sigmoid(l);
            any = any || label_scores[k] >= floors.floor[k];
          }
        }
        if (!any) continue;
        const double cx = (static_cast<double>(col) + sigmoid(static_cast<double>(base[cell]))) /
                          static_cast<double>(in.width);
        const double cy = (static_cast<double>(row) + sigmoid(static_cast<double>(base[plane + cell]))) /
                          static_cast<double>(in.height);
        const double w = std::exp(static_cast<double>(base[2 * plane + cell])) * anchor_w / static_cast<double>(in.width);
        const double h = std::exp(static_cast<double>(base[3 * plane + cell])) * anchor_h / static_cast<double>(in.height);
        for (std::size_t k = 0; k < labels; ++k) {
          const double score = label_scores[k];
          if (score >= floors.floor[k] && std::isfinite(score)) {
            out.push_back({cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h, score, static_cast<int32_t>(k)});
          }
        }
      }
    }
  }
}

}  // namespace sightd::detail
