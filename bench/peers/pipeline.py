"""The recognition pipeline the peers serve: Pillow decode and resize, NumPy pre- and post-processing,
onnxruntime inference, written the way a user of these libraries writes a server (no OpenCV, no sightd).

Runs in .venv-peers (Pillow, NumPy, onnxruntime only). Both peers (diy_server.py, bentoml_service.py) load
their model with ``load(config)``, so that they run exactly the same code. The config is the JSON that
launch.py writes from the zoo: the ONNX file, the labels by network class, and the zoo's preprocessing and
post-processing parameters of the model:

- ``task: "classification"`` (imagenet-mobilenet-v2): decode, RGB, torchvision's ``Resize(256)`` +
  ``CenterCrop(224)`` (the zoo's CROP resize with ``crop_ratio``; Pillow's antialiased bilinear), x / 255,
  (x - mean) / std, NCHW float32; softmax over the logits; the top ``top`` classes.
- ``task: "detection"`` (coco-yolov3-tiny): decode, RGB, darknet's letterbox (scale to fit, centre, pad with
  ``pad_value``), x / 255; YOLOv3 heads decoded with sigmoid classes (score = sigmoid(objectness) x
  sigmoid(class)), boxes mapped back to the original image (normalised, clamped to [0, 1]), per-class greedy
  NMS (a box is dropped when its IoU with a kept box of its class is above ``nms_threshold``), the boxes at or
  above their class's threshold, best first.

The geometry (rounding of the resized size and of the margins) is the zoo's, docs/preprocessing.md, so that a
peer answers what sightd answers for the same model.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

Prediction = dict[str, Any]  # {"label_name": str, "score": float, "box": [xmin, ymin, xmax, ymax]?}


class BadImageError(ValueError):
    """The request body is not an image Pillow can decode."""


def decode(body: bytes) -> Image.Image:
    """The image of an encoded body, EXIF orientation applied, as RGB."""
    try:
        image = Image.open(io.BytesIO(body))
        ImageOps.exif_transpose(image, in_place=True)
        if image.mode != "RGB":
            image = image.convert("RGB")
        image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise BadImageError(f"not a decodable image: {exc}") from exc
    return image


def new_session(config: dict[str, Any]) -> ort.InferenceSession:
    """An onnxruntime CPU session; onnxruntime's default thread layout unless ``intra_op_threads`` > 0."""
    options = ort.SessionOptions()
    threads = int(config.get("intra_op_threads", 0))
    if threads > 0:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(config["onnx"]), options, providers=["CPUExecutionProvider"])


class Model(Protocol):
    """One model's pipeline. ``predict`` does the whole of it for one image; the three steps are exposed for
    servers that batch inference across requests."""

    def predict(self, body: bytes) -> dict[str, list[Prediction]]: ...

    def preprocess(self, body: bytes) -> tuple[np.ndarray, Any]:
        """The input tensor of one image ([3, H, W] float32) and what post-processing needs of it."""
        ...

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        """The network's outputs for a batch [N, 3, H, W], each with the batch dimension first."""
        ...

    def postprocess(self, outputs: list[np.ndarray], context: Any) -> dict[str, list[Prediction]]:
        """The answer for one image from its rows of the outputs."""
        ...


def _half_up(value: float) -> int:
    return int(value + 0.5)


class Classifier:
    def __init__(self, config: dict[str, Any], *, session: bool = True) -> None:
        self.session = new_session(config) if session else None
        self.input = str(config["input"])
        self.output = str(config["output"])
        self.labels: list[str] = list(config["labels"])
        self.width, self.height = (int(v) for v in config["size"])
        self.crop_ratio = float(config["crop_ratio"])
        self.top = int(config.get("top", 5))
        mean = np.asarray(config["mean"], np.float32)
        std = np.asarray(config["std"], np.float32)
        # (x / 255 - mean) / std as one multiply-add per element.
        self.scale = (1.0 / (255.0 * std)).astype(np.float32)
        self.bias = (mean / std).astype(np.float32)

    def preprocess(self, body: bytes) -> tuple[np.ndarray, None]:
        image = decode(body)
        w, h = image.size
        tw, th = self.width, self.height
        if tw * h >= th * w:  # the width needs the larger scale
            rw = max(tw, _half_up(tw / self.crop_ratio))
            rh = max(th, h * rw // w)
        else:
            rh = max(th, _half_up(th / self.crop_ratio))
            rw = max(tw, w * rh // h)
        left, top = (rw - tw) // 2, (rh - th) // 2
        resized = np.asarray(image.resize((rw, rh), Image.Resampling.BILINEAR))
        pixels = resized[top : top + th, left : left + tw]
        tensor = pixels * self.scale - self.bias  # float32 [H, W, 3]
        return np.ascontiguousarray(tensor.transpose(2, 0, 1)), None

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        if self.session is None:
            raise RuntimeError("loaded without an onnxruntime session")
        return list(self.session.run([self.output], {self.input: batch}))

    def postprocess(self, outputs: list[np.ndarray], context: None) -> dict[str, list[Prediction]]:
        logits = outputs[0].reshape(-1).astype(np.float64)
        exp = np.exp(logits - logits.max())
        probabilities = exp / exp.sum()
        best = np.argpartition(-probabilities, self.top)[: self.top]
        best = best[np.argsort(-probabilities[best], kind="stable")]
        return {
            "predictions": [
                {"label_name": self.labels[i], "score": float(probabilities[i])} for i in best.tolist()
            ]
        }

    def predict(self, body: bytes) -> dict[str, list[Prediction]]:
        tensor, context = self.preprocess(body)
        outputs = self.infer(tensor[None])
        return self.postprocess([o[0] for o in outputs], context)


@dataclass(frozen=True)
class Letterbox:
    """Where the image lies in the tensor: resized to resized_w x resized_h, top-left corner at the offset."""

    resized_w: int
    resized_h: int
    offset_x: int
    offset_y: int


class _Head:
    """One YOLO output and, per candidate (anchor, row, column: the order of its values), its grid cell
    and its anchor's size in grid units."""

    def __init__(self, output: str, anchors: list[float]) -> None:
        self.output = output
        self.anchors = np.asarray(anchors, np.float64).reshape(-1, 2)
        self.grid = (0, 0)
        self.cells = np.zeros((0, 4))  # column, row, anchor width, anchor height

    def candidates(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[A * (5 + C), H, W] -> its values per candidate [A * H * W, 5 + C] and the candidates' cells."""
        count = len(self.anchors)
        _, grid_h, grid_w = raw.shape
        if self.grid != (grid_h, grid_w):
            anchor, row, col = np.meshgrid(
                np.arange(count), np.arange(grid_h), np.arange(grid_w), indexing="ij"
            )
            anchor = anchor.ravel()
            self.cells = np.stack(
                [col.ravel(), row.ravel(), self.anchors[anchor, 0], self.anchors[anchor, 1]], axis=1
            ).astype(np.float64)
            self.grid = (grid_h, grid_w)
        values = (
            raw.reshape(count, -1, grid_h * grid_w).transpose(0, 2, 1).reshape(count * grid_h * grid_w, -1)
        )
        return values, self.cells


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, threshold: float) -> np.ndarray:
    """Per-class greedy NMS (torchvision's batched_nms rule): the kept indices, best first. Boxes of different
    classes are moved apart (coordinates are in [0, 1]) so that one pass handles every class."""
    shifted = boxes + (classes * 2.0)[:, None]
    x1, y1, x2, y2 = shifted.T
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        width = np.clip(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0.0, None)
        height = np.clip(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0.0, None)
        inter = width * height
        order = rest[inter / (areas[best] + areas[rest] - inter) <= threshold]
    return np.asarray(keep, np.int64)


class YoloDetector:
    def __init__(self, config: dict[str, Any], *, session: bool = True) -> None:
        self.session = new_session(config) if session else None
        self.input = str(config["input"])
        self.labels: list[str] = list(config["labels"])
        self.width, self.height = (int(v) for v in config["size"])
        self.pad = int(config["pad_value"])
        self.heads = [_Head(str(h["output"]), h["anchors"]) for h in config["heads"]]
        self.outputs = [h.output for h in self.heads]
        self.thresholds = np.asarray(config["thresholds"], np.float64)
        self.min_threshold = float(self.thresholds.min())
        self.nms_threshold = float(config["nms_threshold"])

    def preprocess(self, body: bytes) -> tuple[np.ndarray, Letterbox]:
        image = decode(body)
        w, h = image.size
        tw, th = self.width, self.height
        if tw * h <= th * w:  # the width is the tighter side
            rw, rh = tw, min(max(h * tw // w, 1), th)
        else:
            rw, rh = min(max(w * th // h, 1), tw), th
        ox, oy = (tw - rw) // 2, (th - rh) // 2
        canvas = Image.new("RGB", (tw, th), (self.pad,) * 3)
        canvas.paste(image.resize((rw, rh), Image.Resampling.BILINEAR), (ox, oy))
        tensor = np.asarray(canvas).transpose(2, 0, 1) * np.float32(1.0 / 255.0)
        return np.ascontiguousarray(tensor), Letterbox(rw, rh, ox, oy)

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        if self.session is None:
            raise RuntimeError("loaded without an onnxruntime session")
        return list(self.session.run(self.outputs, {self.input: batch}))

    def postprocess(self, outputs: list[np.ndarray], context: Letterbox) -> dict[str, list[Prediction]]:
        all_boxes, all_scores = [], []
        for head, raw in zip(self.heads, outputs, strict=True):
            values, cells = head.candidates(raw)
            objectness = _sigmoid(values[:, 4].astype(np.float64))
            # score = objectness x class probability <= objectness: the others cannot reach a threshold.
            alive = objectness >= self.min_threshold
            values, cells, objectness = values[alive].astype(np.float64), cells[alive], objectness[alive]
            grid_h, grid_w = head.grid
            all_boxes.append(self._boxes(values, cells, self.width / grid_w, self.height / grid_h, context))
            all_scores.append(objectness[:, None] * _sigmoid(values[:, 5:]))
        boxes = np.concatenate(all_boxes)
        scores = np.concatenate(all_scores)
        candidate, label = np.nonzero(scores >= self.thresholds[None, :])
        boxes, scores = boxes[candidate], scores[candidate, label]
        # Boxes left empty by the clamping (entirely in the padding) are not detections.
        solid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores, label = boxes[solid], scores[solid], label[solid]
        keep = nms(boxes, scores, label, self.nms_threshold)
        return {
            "predictions": [
                {"label_name": self.labels[label[i]], "score": float(scores[i]), "box": boxes[i].tolist()}
                for i in keep.tolist()
            ]
        }

    @staticmethod
    def _boxes(
        values: np.ndarray, cells: np.ndarray, cell_w: float, cell_h: float, letterbox: Letterbox
    ) -> np.ndarray:
        """Candidates' boxes (x1, y1, x2, y2) normalised to the original image and clamped to it; cell_w and
        cell_h: the size of a grid cell in tensor pixels."""
        cx = (cells[:, 0] + _sigmoid(values[:, 0])) * cell_w
        cy = (cells[:, 1] + _sigmoid(values[:, 1])) * cell_h
        half_w = np.exp(values[:, 2]) * cells[:, 2] * cell_w / 2
        half_h = np.exp(values[:, 3]) * cells[:, 3] * cell_h / 2
        # Tensor pixel -> normalised image coordinate: (t - offset) / resized size.
        x1 = (cx - half_w - letterbox.offset_x) / letterbox.resized_w
        y1 = (cy - half_h - letterbox.offset_y) / letterbox.resized_h
        x2 = (cx + half_w - letterbox.offset_x) / letterbox.resized_w
        y2 = (cy + half_h - letterbox.offset_y) / letterbox.resized_h
        return np.clip(np.stack([x1, y1, x2, y2], axis=1), 0.0, 1.0)

    def predict(self, body: bytes) -> dict[str, list[Prediction]]:
        tensor, context = self.preprocess(body)
        outputs = self.infer(tensor[None])
        return self.postprocess([o[0] for o in outputs], context)


def load(config: dict[str, Any], *, session: bool = True) -> Model:
    """The model of a config; without its onnxruntime session (``infer`` unusable) when ``session`` is false,
    for a process that only pre- and post-processes."""
    if config["task"] == "classification":
        return Classifier(config, session=session)
    if config["task"] == "detection":
        return YoloDetector(config, session=session)
    raise ValueError(f"unknown task {config['task']!r}")


def load_file(path: Path) -> Model:
    config: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return load(config)
