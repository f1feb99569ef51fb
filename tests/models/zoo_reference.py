"""An independent reference for the public models: each source project's own preprocessing (PIL, as
torchvision, darknet's Python users, face-api.js and Open-NSFW do it), NumPy decoders and NMS, and the
comparison with the observations of model-sources.md. Nothing here comes from sightd.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from zoo_observations import BOX_TOLERANCE, SCORE_TOLERANCE, Seen


def rgb(path: Path) -> Image.Image:
    return Image.open(path).convert("RGB")


@dataclass(frozen=True)
class Geometry:
    """Tensor pixel = image pixel * scale + offset."""

    scale: float
    offset_x: float
    offset_y: float

    def to_image(self, box: np.ndarray) -> np.ndarray:
        offsets = np.array([self.offset_x, self.offset_y] * 2)
        return (np.asarray(box, np.float64) - offsets) / self.scale


def torchvision_crop(image: Image.Image, size: int = 224, resize: int = 256) -> np.ndarray:
    """transforms.Resize(256) (short side, bilinear with antialias) then CenterCrop(224): HxWx3 uint8."""
    w, h = image.size
    nw, nh = (resize, int(resize * h / w)) if w < h else (int(resize * w / h), resize)
    resized = np.asarray(image.resize((nw, nh), Image.BILINEAR))
    top, left = round((nh - size) / 2), round((nw - size) / 2)
    return resized[top : top + size, left : left + size]


def letterbox(image: Image.Image, size: int, pad: int | tuple[int, int, int]) -> tuple[np.ndarray, Geometry]:
    """darknet's letterbox_image: scale to fit, centre, pad (HxWx3 uint8)."""
    w, h = image.size
    nw, nh = (size, h * size // w) if size / w < size / h else (w * size // h, size)
    out = np.full((size, size, 3), pad, np.uint8)
    x0, y0 = (size - nw) // 2, (size - nh) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = np.asarray(image.resize((nw, nh), Image.BILINEAR))
    return out, Geometry(nw / w, x0, y0)


def pad_to_square_and_resize(image: Image.Image, size: int) -> tuple[np.ndarray, Geometry]:
    """face-api.js: pad with zeros at the bottom/right to a square, then resize."""
    w, h = image.size
    side = max(w, h)
    square = Image.new("RGB", (side, side))
    square.paste(image, (0, 0))
    return np.asarray(square.resize((size, size), Image.BILINEAR)), Geometry(size / side, 0, 0)


def open_nsfw(image: Image.Image) -> np.ndarray:
    """Open-NSFW's recipe: squash to 256x256, JPEG round trip, centre crop 224, BGR minus the VGG mean."""
    buffer = io.BytesIO()
    image.resize((256, 256), Image.BILINEAR).save(buffer, format="JPEG")
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), np.float32)
    return decoded[16:240, 16:240, ::-1] - np.array([104.0, 117.0, 123.0], np.float32)


def nchw(pixels: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(pixels.transpose(2, 0, 1)[None]).astype(np.float32)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return np.asarray(e / e.sum(axis=axis, keepdims=True))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def yolo_candidates(
    head: np.ndarray, anchors: list[tuple[float, float]], input_size: int, softmax_classes: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One darknet head [A*(5+C), H, W] -> boxes [M, 4] (x1, y1, x2, y2 tensor px) and scores [M, C].

    Anchors in grid cells. YOLOv3: score = sigmoid(obj) * sigmoid(class); YOLOv2: * softmax(classes).
    """
    count = len(anchors)
    grid_h, grid_w = head.shape[1:]
    t = head.reshape(count, -1, grid_h, grid_w).astype(np.float64)
    rows, cols = np.meshgrid(np.arange(grid_h), np.arange(grid_w), indexing="ij")
    aw = np.array([a[0] for a in anchors])[:, None, None]
    ah = np.array([a[1] for a in anchors])[:, None, None]
    cx = (sigmoid(t[:, 0]) + cols) / grid_w * input_size
    cy = (sigmoid(t[:, 1]) + rows) / grid_h * input_size
    bw = np.exp(t[:, 2]) * aw / grid_w * input_size
    bh = np.exp(t[:, 3]) * ah / grid_h * input_size
    classes = softmax(t[:, 5:], axis=1) if softmax_classes else sigmoid(t[:, 5:])
    scores = sigmoid(t[:, 4:5]) * classes
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=-1).reshape(-1, 4)
    return boxes, scores.transpose(0, 2, 3, 1).reshape(-1, scores.shape[1])


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1, y1 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    x2, y2 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda r: (r[..., 2] - r[..., 0]) * (r[..., 3] - r[..., 1])  # noqa: E731
    return np.asarray(inter / (area(a) + area(b) - inter))


def detect(
    boxes: np.ndarray,
    scores: np.ndarray,
    *,
    threshold: float,
    nms: float,
    labels: list[str],
    geometry: Geometry,
) -> list[tuple[str, float, np.ndarray]]:
    """Per-class NMS over the candidates above the threshold; boxes back in image pixels, best first."""
    found: list[tuple[str, float, np.ndarray]] = []
    for k in range(scores.shape[1]):
        keep = np.nonzero(scores[:, k] > threshold)[0]
        order = keep[np.argsort(-scores[keep, k], kind="stable")]
        while order.size:
            best, order = order[0], order[1:]
            found.append((labels[k], float(scores[best, k]), geometry.to_image(boxes[best])))
            order = order[iou(boxes[best], boxes[order]) < nms] if order.size else order
    return sorted(found, key=lambda d: -d[1])


def assert_detections(
    found: list[tuple[str, float, np.ndarray]], seen: tuple[Seen, ...], image_size: tuple[int, int]
) -> None:
    """The observed labels are the best ones: each has a detection with the observed score (and box), and
    nothing else scores as high as the weakest observed detection."""
    width, height = image_size
    for expected in seen:
        mine = [d for d in found if d[0] == expected.label]
        assert mine, f"no {expected.label} in {found}"
        label, score, box = max(mine, key=lambda d: d[1])
        assert abs(score - expected.score) <= SCORE_TOLERANCE, (label, score, expected)
        if expected.box is not None:
            limits = np.array([width, height, width, height]) * BOX_TOLERANCE
            assert (np.abs(box - np.array(expected.box)) <= limits).all(), (label, box.round(), expected)
    floor = min((s.score for s in seen), default=0.0) - SCORE_TOLERANCE
    others = [d for d in found if d[0] not in {s.label for s in seen} and d[1] >= floor]
    assert not others, f"unexpected detections {others}"


def assert_scores(scores: dict[str, float], seen: tuple[Seen, ...], top1: str) -> None:
    best = max(scores, key=lambda k: scores[k])
    assert best == top1, (best, scores[best])
    for expected in seen:
        assert abs(scores[expected.label] - expected.score) <= SCORE_TOLERANCE, (
            expected,
            scores[expected.label],
        )
