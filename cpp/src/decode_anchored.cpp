// Faster R-CNN style outputs: class-specific deltas applied to anchors (rois or priors).
#include <cmath>

#include "postprocess_internal.hpp"

namespace sightd::detail {

void decode_anchored(const AnchoredInputs& in, const std::vector<int64_t>& label_columns, const LabelFloors& floors,
                     std::vector<Candidate>& out) {
  const double plus = in.legacy_plus_one ? 1.0 : 0.0;
  const std::size_t labels = label_columns.size();
  const std::size_t offset_stride = in.shared_offsets ? 4 : 4 * in.columns;
  for (std::size_t i = 0; i < in.rows; ++i) {
    const float* row_scores = in.scores + i * in.columns;
    const float* anchor = in.anchors + i * in.anchor_stride + in.anchor_offset;
    for (std::size_t k = 0; k < labels; ++k) {
      const auto column = static_cast<std::size_t>(label_columns[k]);
      const double score = static_cast<double>(row_scores[column]);
      if (!(score >= floors.floor[k]) || !std::isfinite(score)) continue;
      const float* d = in.offsets + i * offset_stride + (in.shared_offsets ? 0 : 4 * column);
      const double ax1 = static_cast<double>(anchor[0]);
      const double ay1 = static_cast<double>(anchor[1]);
      const double width = static_cast<double>(anchor[2]) - ax1 + plus;
      const double height = static_cast<double>(anchor[3]) - ay1 + plus;
      const double cx = ax1 + 0.5 * width;
      const double cy = ay1 + 0.5 * height;
      const double pcx = static_cast<double>(d[0]) * width + cx;
      const double pcy = static_cast<double>(d[1]) * height + cy;
      const double pw = std::exp(static_cast<double>(d[2])) * width;
      const double ph = std::exp(static_cast<double>(d[3])) * height;
      out.push_back({pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph, score, static_cast<int32_t>(k)});
    }
  }
}

}  // namespace sightd::detail
