"""An independent NumPy reference of the post-processing, written from docs/postprocessing.md.

Everything is float64 and vectorised the NumPy way (whole arrays, argsort), unlike the core's per-candidate
loops, so that agreement between the two is evidence rather than a copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def sigmoid(x: npt.ArrayLike) -> F64:
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def softmax(x: npt.ArrayLike, axis: int = -1) -> F64:
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)


def iou_matrix(a: F64, b: F64) -> F64:
    """IoU of every box of a [N, 4] with every box of b [M, 4] (x1, y1, x2, y2, canonical)."""
    xx1 = np.maximum(a[:, None, 0], b[None, :, 0])
    yy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    xx2 = np.minimum(a[:, None, 2], b[None, :, 2])
    yy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.maximum(0.0, xx2 - xx1) * np.maximum(0.0, yy2 - yy1)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def canonical(boxes: npt.ArrayLike) -> F64:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack(
        [
            np.minimum(b[:, 0], b[:, 2]),
            np.minimum(b[:, 1], b[:, 3]),
            np.maximum(b[:, 0], b[:, 2]),
            np.maximum(b[:, 1], b[:, 3]),
        ],
        axis=1,
    )


def nms(
    boxes: npt.ArrayLike, scores: npt.ArrayLike, classes: npt.ArrayLike | None, threshold: float
) -> list[int]:
    """Greedy NMS: visit by decreasing score (ties: lower index), drop what overlaps a kept box above the
    threshold in its class. Invalid (non-finite) boxes and scores are left out."""
    b = canonical(boxes)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    c = np.zeros(len(s), dtype=np.int64) if classes is None else np.asarray(classes).astype(np.int64)
    valid = np.isfinite(s) & np.all(np.isfinite(b), axis=1)
    order = np.lexsort((np.arange(len(s)), -s))
    order = order[valid[order]]
    kept: list[int] = []
    for cls in np.unique(c[order]):
        members = order[c[order] == cls]  # still by decreasing score
        alive = np.ones(len(members), dtype=bool)
        for p in range(len(members)):
            if not alive[p]:
                continue
            kept.append(int(members[p]))
            overlaps = iou_matrix(b[members[p] : members[p] + 1], b[members[p + 1 :]])[0]
            alive[p + 1 :] &= ~(overlaps > threshold)
    return sorted(kept, key=lambda i: (-s[i], i))


@dataclass
class Frame:
    """The geometry of transform.hpp, written out: tensor pixel -> normalised image coordinate."""

    image_width: int
    image_height: int
    tensor_width: int
    tensor_height: int
    crop: tuple[float, float, float, float] | None = None  # x, y, width, height in image pixels
    scale: tuple[float, float] = (1.0, 1.0)
    offset: tuple[float, float] = (0.0, 0.0)

    def to_image(self, tx: F64, ty: F64) -> tuple[F64, F64]:
        cx, cy = (self.crop[0], self.crop[1]) if self.crop else (0.0, 0.0)
        x = (cx + (tx - self.offset[0]) / self.scale[0]) / self.image_width
        y = (cy + (ty - self.offset[1]) / self.scale[1]) / self.image_height
        return x, y

    def bounds(self) -> tuple[float, float, float, float]:
        if not self.crop or self.crop[2] <= 0 or self.crop[3] <= 0:
            return 0.0, 0.0, 1.0, 1.0
        x, y, w, h = self.crop
        return (
            max(0.0, x / self.image_width),
            max(0.0, y / self.image_height),
            min(1.0, (x + w) / self.image_width),
            min(1.0, (y + h) / self.image_height),
        )

    def transform(self):  # type: ignore[no-untyped-def]
        from sightd import _core

        t = _core.Transform()
        t.image_width, t.image_height = self.image_width, self.image_height
        t.tensor_width, t.tensor_height = self.tensor_width, self.tensor_height
        if self.crop:
            t.crop_x, t.crop_y, t.crop_width, t.crop_height = self.crop
        t.scale_x, t.scale_y = self.scale
        t.offset_x, t.offset_y = self.offset
        return t


def letterbox_frame(image_width: int, image_height: int, size: int) -> Frame:
    scale = min(size / image_width, size / image_height)
    ox = (size - image_width * scale) / 2
    oy = (size - image_height * scale) / 2
    return Frame(
        image_width, image_height, size, size, (0.0, 0.0, image_width, image_height), (scale, scale), (ox, oy)
    )


@dataclass
class Candidates:
    """Decoded candidates in decode order: native boxes (x1, y1, x2, y2), scores, spec label indices."""

    boxes: F64 = field(default_factory=lambda: np.zeros((0, 4)))
    scores: F64 = field(default_factory=lambda: np.zeros(0))
    labels: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @staticmethod
    def concat(parts: list[Candidates]) -> Candidates:
        if not parts:
            return Candidates()
        return Candidates(
            np.concatenate([p.boxes for p in parts]).reshape(-1, 4),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.labels for p in parts]).astype(np.int64),
        )


def yolo_candidates(
    output: npt.ArrayLike, anchors: list[float], label_classes: list[int], floors: F64, class_activation: str
) -> Candidates:
    """Darknet region layout [A x (5 + C), H, W]; label_classes[k]: class of label k (-1: objectness)."""
    x = np.asarray(output, dtype=np.float64)
    x = x.reshape(x.shape[-3:])
    a = len(anchors) // 2
    channels, h, w = x.shape
    per = channels // a
    x = x.reshape(a, per, h, w)
    obj = sigmoid(x[:, 4])
    if per == 5:
        probs = np.ones((a, 1, h, w))
    elif class_activation == "SOFTMAX":
        probs = softmax(x[:, 5:], axis=1)
    else:
        probs = sigmoid(x[:, 5:])
    cols = np.arange(w)[None, None, :]
    rows = np.arange(h)[None, :, None]
    aw = np.asarray(anchors[0::2], dtype=np.float64)[:, None, None]
    ah = np.asarray(anchors[1::2], dtype=np.float64)[:, None, None]
    with np.errstate(over="ignore", invalid="ignore"):
        cx = (cols + sigmoid(x[:, 0])) / w
        cy = (rows + sigmoid(x[:, 1])) / h
        bw = np.exp(x[:, 2]) * aw / w
        bh = np.exp(x[:, 3]) * ah / h
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=-1)  # [A, H, W, 4]
        label_probs = np.stack([probs[:, max(c, 0)] for c in label_classes], axis=-1)  # [A, H, W, L]
        scores = obj[..., None] * label_probs
    keep = (scores >= floors) & np.isfinite(scores)
    idx = np.nonzero(keep)  # C order: anchor, row, column, label = the documented decode order
    return Candidates(boxes[idx[0], idx[1], idx[2]], scores[idx], idx[3].astype(np.int64))


def anchored_candidates(  # noqa: PLR0917
    anchors: npt.ArrayLike,
    scores: npt.ArrayLike,
    offsets: npt.ArrayLike,
    label_columns: list[int],
    floors: F64,
    plus_one: bool,
) -> Candidates:
    a = np.asarray(anchors, dtype=np.float64)
    a = a.reshape(-1, a.shape[-1])[:, -4:]
    s = np.asarray(scores, dtype=np.float64)
    s = s.reshape(-1, s.shape[-1])
    o = np.asarray(offsets, dtype=np.float64)
    o = o.reshape(len(a), -1, 4)
    pick = np.asarray(label_columns)
    label_scores = s[:, pick]  # [N, L]
    deltas = o[:, pick] if o.shape[1] > 1 else np.repeat(o, len(pick), axis=1)  # [N, L, 4]
    p = 1.0 if plus_one else 0.0
    widths = (a[:, 2] - a[:, 0] + p)[:, None]
    heights = (a[:, 3] - a[:, 1] + p)[:, None]
    ctr_x = a[:, 0:1] + 0.5 * widths
    ctr_y = a[:, 1:2] + 0.5 * heights
    with np.errstate(over="ignore", invalid="ignore"):
        pcx = deltas[..., 0] * widths + ctr_x
        pcy = deltas[..., 1] * heights + ctr_y
        pw = np.exp(deltas[..., 2]) * widths
        ph = np.exp(deltas[..., 3]) * heights
    boxes = np.stack([pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph], axis=-1)
    keep = (label_scores >= floors) & np.isfinite(label_scores)
    rows, labels = np.nonzero(keep)  # row-major: anchor row, then label
    return Candidates(boxes[rows, labels], label_scores[rows, labels], labels.astype(np.int64))


def direct_candidates(  # noqa: PLR0917
    boxes: npt.ArrayLike,
    scores: npt.ArrayLike,
    classes: npt.ArrayLike,
    class_values: list[int],
    floors: F64,
    count: int | None = None,
) -> Candidates:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    c = np.asarray(classes, dtype=np.float64).reshape(-1)
    n = len(b) if count is None else max(0, min(len(b), count))
    out_boxes, out_scores, out_labels = [], [], []
    for i in range(n):
        if not np.isfinite(c[i]) or round(c[i]) not in class_values:
            continue
        k = class_values.index(round(c[i]))
        if np.isfinite(s[i]) and s[i] >= floors[k]:
            ymin, xmin, ymax, xmax = b[i]
            out_boxes.append([xmin, ymin, xmax, ymax])
            out_scores.append(s[i])
            out_labels.append(k)
    return Candidates(
        np.array(out_boxes).reshape(-1, 4), np.array(out_scores), np.array(out_labels, dtype=np.int64)
    )


@dataclass
class RefPrediction:
    label: int
    score: float
    box: tuple[float, float, float, float] | None = None
    region_id: int = 0


def detect(  # noqa: PLR0917
    candidates: Candidates,
    frame: Frame,
    fx: float,
    fy: float,
    thresholds: list[float],
    nms_threshold: float,
    *,
    agnostic: bool = False,
    show_discarded: bool = True,
    cap: int | None = None,
) -> tuple[list[RefPrediction], list[RefPrediction]]:
    """Map native boxes to the image (tensor pixel = native x fx), clamp, drop empty ones, NMS, split."""
    b = canonical(candidates.boxes)
    with np.errstate(invalid="ignore", over="ignore"):
        x1, y1 = frame.to_image(b[:, 0] * fx, b[:, 1] * fy)
        x2, y2 = frame.to_image(b[:, 2] * fx, b[:, 3] * fy)
    mapped = np.stack([x1, y1, x2, y2], axis=1)
    finite = np.all(np.isfinite(mapped), axis=1)
    lo_x, lo_y, hi_x, hi_y = frame.bounds()
    mapped = np.stack(
        [np.clip(x1, lo_x, hi_x), np.clip(y1, lo_y, hi_y), np.clip(x2, lo_x, hi_x), np.clip(y2, lo_y, hi_y)],
        axis=1,
    )
    valid = finite & (mapped[:, 2] > mapped[:, 0]) & (mapped[:, 3] > mapped[:, 1])
    boxes = mapped[valid]
    scores = candidates.scores[valid]
    labels = candidates.labels[valid]
    kept = nms(boxes, scores, None if agnostic else labels, nms_threshold)
    predicted: list[RefPrediction] = []
    discarded: list[RefPrediction] = []
    for i in kept:
        k = int(labels[i])
        item = RefPrediction(k, float(scores[i]), tuple(float(v) for v in boxes[i]))  # type: ignore[arg-type]
        if scores[i] >= thresholds[k]:
            predicted.append(item)
        elif show_discarded:
            discarded.append(item)
    if cap is not None:
        predicted, discarded = predicted[:cap], discarded[:cap]
    for region, item in enumerate(predicted + discarded, start=1):
        item.region_id = region
    return predicted, discarded


def classify(
    values: npt.ArrayLike,
    activation: str,
    label_classes: list[int],
    thresholds: list[float],
    cap: int | None = None,
) -> tuple[list[RefPrediction], list[RefPrediction]]:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if activation == "SOFTMAX":
        probs = softmax(v)
    elif activation == "SIGMOID":
        probs = sigmoid(v)
    else:
        probs = v
    scores = probs[np.asarray(label_classes, dtype=np.int64)]
    order = np.lexsort((np.arange(len(scores)), -scores))
    predicted = [
        RefPrediction(int(k), float(scores[k]))
        for k in order
        if np.isfinite(scores[k]) and scores[k] >= thresholds[k]
    ]
    discarded = [
        RefPrediction(int(k), float(scores[k]))
        for k in order
        if np.isfinite(scores[k]) and not scores[k] >= thresholds[k]
    ]
    if cap is not None:
        predicted, discarded = predicted[:cap], discarded[:cap]
    return predicted, discarded
