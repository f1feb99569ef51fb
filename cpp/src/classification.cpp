// Classification and tagging scores: the network's class vector through an optional activation.
#include <algorithm>
#include <cmath>

#include "postprocess_internal.hpp"

namespace sightd::detail {

void classification_scores(const float* values, std::size_t count, Activation activation,
                           const std::vector<int64_t>& label_classes, std::vector<double>& scratch,
                           std::vector<double>& scores) {
  scores.resize(label_classes.size());
  if (activation == Activation::kSoftmax) {
    // Over every network class, not only the ones the spec exposes.
    double max_value = -HUGE_VAL;
    bool nan = false;
    for (std::size_t c = 0; c < count; ++c) {
      const double v = static_cast<double>(values[c]);
      nan = nan || std::isnan(v);
      max_value = std::max(max_value, v);
    }
    scratch.resize(count);
    double sum = 0.0;
    for (std::size_t c = 0; c < count; ++c) {
      scratch[c] = std::exp(static_cast<double>(values[c]) - max_value);
      sum += scratch[c];
    }
    for (std::size_t k = 0; k < label_classes.size(); ++k) {
      scores[k] = nan ? std::nan("") : scratch[static_cast<std::size_t>(label_classes[k])] / sum;
    }
    return;
  }
  for (std::size_t k = 0; k < label_classes.size(); ++k) {
    const double v = static_cast<double>(values[static_cast<std::size_t>(label_classes[k])]);
    scores[k] = activation == Activation::kSigmoid ? 1.0 / (1.0 + std::exp(-v)) : v;
  }
}

}  // namespace sightd::detail
