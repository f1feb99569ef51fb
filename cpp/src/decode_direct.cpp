// TensorFlow Object Detection API style outputs: final boxes, scores and class values.
#include <algorithm>
#include <cmath>

#include "postprocess_internal.hpp"

namespace sightd::detail {

void decode_direct(const DirectInputs& in, const std::vector<std::pair<int64_t, int32_t>>& class_to_label,
                   const LabelFloors& floors, std::vector<Candidate>& out) {
  for (std::size_t i = 0; i < in.rows; ++i) {
    const double value = static_cast<double>(in.classes[i]);
    // Class values beyond int64 or non-finite cannot name a label.
    if (!(std::fabs(value) < 9.0e18)) continue;
    const auto cls = static_cast<int64_t>(std::llround(value));
    auto it = std::lower_bound(class_to_label.begin(), class_to_label.end(), std::make_pair(cls, int32_t{-1}));
    if (it == class_to_label.end() || it->first != cls) continue;  // not a spec label: not exposed
    const int32_t label = it->second;
    const double score = static_cast<double>(in.scores[i]);
    if (!(score >= floors.floor[static_cast<std::size_t>(label)]) || !std::isfinite(score)) continue;
    const float* b = in.boxes + 4 * i;
    out.push_back({static_cast<double>(b[1]), static_cast<double>(b[0]), static_cast<double>(b[3]),
                   static_cast<double>(b[2]), score, label});
  }
}

}  // namespace sightd::detail
