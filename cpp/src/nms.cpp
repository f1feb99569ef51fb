#include "sightd/nms.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "nms_overlap.hpp"
#include "sightd/error.hpp"

namespace sightd {

namespace {

struct Item {
  uint64_t key;  // ascending key = descending score
  uint32_t index;
  int32_t cls;
};

bool item_less(const Item& a, const Item& b) noexcept { return a.key < b.key || (a.key == b.key && a.index < b.index); }

// Maps a finite score to an unsigned key whose ascending order is the score's descending order, so that the
// sorts compare integers. -0.0 and 0.0 get the same key.
uint64_t descending_key(double score) noexcept {
  const double normalised = score + 0.0;
  uint64_t bits;
  std::memcpy(&bits, &normalised, sizeof bits);
  const uint64_t ascending = (bits >> 63) ? ~bits : bits | (uint64_t{1} << 63);
  return ~ascending;
}

bool finite_box(const NmsBox& b) noexcept {
  return std::isfinite(b.x1) && std::isfinite(b.y1) && std::isfinite(b.x2) && std::isfinite(b.y2);
}

}  // namespace

struct NmsWorkspace::Buffers {
  std::vector<Item> items;
  std::vector<Item> grouped;
  std::vector<uint32_t> counts;
  std::vector<Item> kept_items;
  // The boxes kept so far in the current class, structure-of-arrays so the overlap loop vectorises.
  std::vector<double> kx1, ky1, kx2, ky2, karea;
};

NmsWorkspace::NmsWorkspace() : buffers_(std::make_unique<Buffers>()) {}
NmsWorkspace::~NmsWorkspace() = default;

double iou(const NmsBox& a, const NmsBox& b) noexcept {
  const double ax1 = std::min(a.x1, a.x2), ax2 = std::max(a.x1, a.x2);
  const double ay1 = std::min(a.y1, a.y2), ay2 = std::max(a.y1, a.y2);
  const double bx1 = std::min(b.x1, b.x2), bx2 = std::max(b.x1, b.x2);
  const double by1 = std::min(b.y1, b.y2), by2 = std::max(b.y1, b.y2);
  const double w = std::max(0.0, std::min(ax2, bx2) - std::max(ax1, bx1));
  const double h = std::max(0.0, std::min(ay2, by2) - std::max(ay1, by1));
  const double inter = w * h;
  const double uni = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter;
  return uni > 0.0 ? inter / uni : 0.0;
}

namespace {

// Greedy suppression of one class's items, already in visiting order; appends the survivors to `kept`.
void suppress_run(const NmsBox* boxes, const Item* run, std::size_t size, double threshold,
                  NmsWorkspace::Buffers& buf) {
  auto& kx1 = buf.kx1;
  auto& ky1 = buf.ky1;
  auto& kx2 = buf.kx2;
  auto& ky2 = buf.ky2;
  auto& karea = buf.karea;
  kx1.clear();
  ky1.clear();
  kx2.clear();
  ky2.clear();
  karea.clear();
  for (std::size_t r = 0; r < size; ++r) {
    const NmsBox& b = boxes[run[r].index];
    const double x1 = std::min(b.x1, b.x2), x2 = std::max(b.x1, b.x2);
    const double y1 = std::min(b.y1, b.y2), y2 = std::max(b.y1, b.y2);
    const double area = (x2 - x1) * (y2 - y1);
    const double box[5] = {x1, y1, x2, y2, area};
    const detail::KeptBoxes kept{kx1.data(), ky1.data(), kx2.data(), ky2.data(), karea.data(), kx1.size()};
    const bool suppressed = detail::overlaps_any(kept, box, threshold);
    if (!suppressed) {
      kx1.push_back(x1);
      ky1.push_back(y1);
      kx2.push_back(x2);
      ky2.push_back(y2);
      karea.push_back(area);
      buf.kept_items.push_back(run[r]);
    }
  }
}

}  // namespace

void nms(const NmsBox* boxes, const double* scores, const int32_t* classes, std::size_t count,
         double iou_threshold, NmsWorkspace& workspace, std::vector<uint32_t>& kept) {
  kept.clear();
  if (!(iou_threshold >= 0.0 && iou_threshold <= 1.0)) {
    throw_invalid_argument("iou_threshold", "must be in [0, 1], got " + std::to_string(iou_threshold));
  }
  if (count > std::numeric_limits<uint32_t>::max()) {
    throw_invalid_argument("boxes", "too many boxes for one NMS call");
  }
  NmsWorkspace::Buffers& buf = workspace.buffers();
  auto& items = buf.items;
  items.clear();
  for (std::size_t i = 0; i < count; ++i) {
    if (!std::isfinite(scores[i]) || !finite_box(boxes[i])) continue;
    items.push_back({descending_key(scores[i]), static_cast<uint32_t>(i), classes ? classes[i] : 0});
  }
  if (items.empty()) return;

  // Group by class (stable, so indices stay increasing inside a class), then order each class by score.
  std::vector<Item>* grouped = &items;
  int32_t lo = items.front().cls, hi = lo;
  for (const Item& it : items) {
    lo = std::min(lo, it.cls);
    hi = std::max(hi, it.cls);
  }
  const int64_t range = int64_t{hi} - int64_t{lo} + 1;
  auto& kept_items = buf.kept_items;
  kept_items.clear();
  if (range == 1) {
    std::sort(items.begin(), items.end(), item_less);
    suppress_run(boxes, items.data(), items.size(), iou_threshold, buf);
  } else if (range <= (int64_t{1} << 16)) {
    auto& counts = buf.counts;
    counts.assign(static_cast<std::size_t>(range) + 1, 0);
    for (const Item& it : items) ++counts[static_cast<std::size_t>(it.cls - lo) + 1];
    for (std::size_t c = 1; c < counts.size(); ++c) counts[c] += counts[c - 1];
    buf.grouped.resize(items.size());
    grouped = &buf.grouped;
    {
      std::vector<uint32_t>& next = counts;  // counts[c] is now the start of class c; used as a cursor
      for (const Item& it : items) (*grouped)[next[static_cast<std::size_t>(it.cls - lo)]++] = it;
    }
    // counts[c] is now the end of class c (= start of c + 1).
    std::size_t begin = 0;
    for (std::size_t c = 0; c + 1 < counts.size(); ++c) {
      const std::size_t end = counts[c];
      if (end > begin) {
        std::sort(grouped->begin() + static_cast<std::ptrdiff_t>(begin),
                  grouped->begin() + static_cast<std::ptrdiff_t>(end), item_less);
        suppress_run(boxes, grouped->data() + begin, end - begin, iou_threshold, buf);
      }
      begin = end;
    }
  } else {
    std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
      return a.cls < b.cls || (a.cls == b.cls && item_less(a, b));
    });
    std::size_t begin = 0;
    while (begin < items.size()) {
      std::size_t end = begin + 1;
      while (end < items.size() && items[end].cls == items[begin].cls) ++end;
      suppress_run(boxes, items.data() + begin, end - begin, iou_threshold, buf);
      begin = end;
    }
  }
  if (range > 1) std::sort(kept_items.begin(), kept_items.end(), item_less);
  kept.reserve(kept_items.size());
  for (const Item& it : kept_items) kept.push_back(it.index);
}

std::vector<uint32_t> nms(const std::vector<NmsBox>& boxes, const std::vector<double>& scores,
                          const std::vector<int32_t>& classes, double iou_threshold) {
  if (scores.size() != boxes.size() || (!classes.empty() && classes.size() != boxes.size())) {
    throw_invalid_argument("scores", "boxes, scores and classes must have the same length");
  }
  NmsWorkspace workspace;
  std::vector<uint32_t> kept;
  nms(boxes.data(), scores.data(), classes.empty() ? nullptr : classes.data(), boxes.size(), iou_threshold,
      workspace, kept);
  return kept;
}

}  // namespace sightd
