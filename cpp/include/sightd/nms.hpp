// Greedy non-maximum suppression, per class or class-agnostic, deterministic on ties.
//
// IoU(a, b) = inter / (area(a) + area(b) - inter) in double precision with continuous coordinates
// (area = (x2 - x1) * (y2 - y1), no +1), and 0/0 treated as no overlap. Boxes are visited by decreasing
// score, ties by increasing index; a box is kept when its IoU with every box already kept in its class is
// <= iou_threshold. The result equals torchvision's batched_nms on the same boxes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace sightd {

struct NmsBox {
  double x1 = 0.0;
  double y1 = 0.0;
  double x2 = 0.0;
  double y2 = 0.0;
};

double iou(const NmsBox& a, const NmsBox& b) noexcept;

// Reusable buffers: one per thread keeps repeated calls free of allocations once warm.
class NmsWorkspace {
 public:
  NmsWorkspace();
  ~NmsWorkspace();
  NmsWorkspace(const NmsWorkspace&) = delete;
  NmsWorkspace& operator=(const NmsWorkspace&) = delete;

  struct Buffers;  // defined in nms.cpp
  Buffers& buffers() noexcept { return *buffers_; }

 private:
  std::unique_ptr<Buffers> buffers_;
};

// Writes into `kept` the indices of the boxes kept, by decreasing score (ties: increasing index).
// `classes` may be null (one class). Inverted boxes (x2 < x1 or y2 < y1) are taken with their coordinates
// swapped; a box with a NaN or infinite coordinate or score is never kept and suppresses nothing.
// iou_threshold must be in [0, 1] (else Error kInvalidArgument). `count` must fit in uint32.
void nms(const NmsBox* boxes, const double* scores, const int32_t* classes, std::size_t count,
         double iou_threshold, NmsWorkspace& workspace, std::vector<uint32_t>& kept);

// Convenience overload with a workspace of its own.
std::vector<uint32_t> nms(const std::vector<NmsBox>& boxes, const std::vector<double>& scores,
                          const std::vector<int32_t>& classes, double iou_threshold);

}  // namespace sightd
