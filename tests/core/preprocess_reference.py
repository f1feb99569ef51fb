"""An independent NumPy + OpenCV-Python reference of the preprocessing that docs/preprocessing.md defines.

Written from the documented formulas, in float64, one obvious step at a time (resize, crop/pad onto a canvas,
colour order, scaling, means, layout), with nothing shared with the core's code. Antialiased resizing is
Pillow's own Image.resize.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

INTERPOLATIONS = {
    "LINEAR": cv2.INTER_LINEAR,
    "AREA": cv2.INTER_AREA,
    "CUBIC": cv2.INTER_CUBIC,
    "NEAREST": cv2.INTER_NEAREST,
}


@dataclass
class RefSpec:
    resize_type: str = "SQUASH"
    data_type: str = "FLOAT32"
    dimension_order: str = "NCHW"
    pixel_scaling: float = 255.0
    target_width: int = 224
    target_height: int = 224
    color_channels: str = "BGR"
    mean_file: np.ndarray | None = None  # (C, H, W), channels in the tensor's order
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    crop_ratio: float = 1.0
    pad_value: list[float] = field(default_factory=list)
    letterbox_align: str = "CENTER"
    max_size: int = 0
    stride: int = 0
    interpolation: str = "LINEAR"
    antialias: bool = False

    @property
    def channels(self) -> int:
        return 1 if self.color_channels == "L" else 3


@dataclass
class RefPlan:
    resized_width: int
    resized_height: int
    offset_x: int
    offset_y: int
    tensor_width: int
    tensor_height: int


def half_up(value: float) -> int:
    return math.floor(value + 0.5)


def plan(spec: RefSpec, w: int, h: int) -> RefPlan:
    tw, th = spec.target_width, spec.target_height
    if spec.resize_type == "SQUASH":
        return RefPlan(tw, th, 0, 0, tw, th)
    if spec.resize_type == "CROP":
        if tw / w >= th / h:
            rw = max(tw, half_up(tw / spec.crop_ratio))
            rh = min(16384, max(th, (h * rw) // w))
        else:
            rh = max(th, half_up(th / spec.crop_ratio))
            rw = min(16384, max(tw, (w * rh) // h))
        return RefPlan(rw, rh, -((rw - tw) // 2), -((rh - th) // 2), tw, th)
    if spec.resize_type == "LETTERBOX":
        if tw / w <= th / h:
            rw, rh = tw, min(th, max(1, h * tw // w))
        else:
            rw, rh = min(tw, max(1, w * th // h)), th
        if spec.letterbox_align == "CENTER":
            return RefPlan(rw, rh, (tw - rw) // 2, (th - rh) // 2, tw, th)
        return RefPlan(rw, rh, 0, 0, tw, th)
    assert spec.resize_type == "NETWORK"
    scale = th / min(w, h)
    if spec.max_size and half_up(max(w, h) * scale) > spec.max_size:
        scale = spec.max_size / max(w, h)
    rw, rh = max(1, half_up(w * scale)), max(1, half_up(h * scale))
    tw_, th_ = rw, rh
    if spec.stride > 1:
        tw_ = math.ceil(rw / spec.stride) * spec.stride
        th_ = math.ceil(rh / spec.stride) * spec.stride
    return RefPlan(rw, rh, 0, 0, tw_, th_)


def pillow_resize(bgr: np.ndarray, width: int, height: int, interpolation: str = "LINEAR") -> np.ndarray:
    """Pillow's Image.resize (BILINEAR for LINEAR, BICUBIC for CUBIC) of an 8-bit BGR image."""
    resample = Image.Resampling.BICUBIC if interpolation == "CUBIC" else Image.Resampling.BILINEAR
    rgb = Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]))
    return np.asarray(rgb.resize((width, height), resample))[:, :, ::-1]


def preprocess(bgr: np.ndarray, spec: RefSpec) -> tuple[np.ndarray, RefPlan]:
    """The tensor of one image (no batch dimension) and its plan."""
    h, w = bgr.shape[:2]
    p = plan(spec, w, h)
    if (w, h) == (p.resized_width, p.resized_height):
        resized = bgr
    elif spec.antialias and (p.resized_width < w or p.resized_height < h):
        resized = pillow_resize(bgr, p.resized_width, p.resized_height, spec.interpolation)
    else:
        resized = cv2.resize(
            bgr,
            (p.resized_width, p.resized_height),
            interpolation=INTERPOLATIONS[spec.interpolation],
        )
    pixels = resized.astype(np.float64)
    if spec.color_channels == "RGB":
        pixels = pixels[:, :, ::-1]
    elif spec.color_channels == "L":
        pixels = (pixels @ np.array([0.114, 0.587, 0.299]))[:, :, None]

    tw, th, c = p.tensor_width, p.tensor_height, spec.channels
    canvas = np.zeros((th, tw, c))
    is_image = np.zeros((th, tw), dtype=bool)
    # Tensor pixel (x, y) shows resized pixel (x - offset_x, y - offset_y) when that exists.
    ys = np.arange(th) - p.offset_y
    xs = np.arange(tw) - p.offset_x
    valid_y = (ys >= 0) & (ys < p.resized_height)
    valid_x = (xs >= 0) & (xs < p.resized_width)
    canvas[np.ix_(valid_y, valid_x)] = pixels[np.ix_(ys[valid_y], xs[valid_x])]
    is_image[np.ix_(valid_y, valid_x)] = True
    if spec.pad_value:
        pad = np.broadcast_to(np.array(spec.pad_value, dtype=np.float64), (c,))
        canvas[~is_image] = pad

    values = canvas * spec.pixel_scaling / 255.0
    if spec.mean_file is not None:
        mean = spec.mean_file.astype(np.float32)
        if mean.shape[1:] == (1, 1):
            values -= mean[:, 0, 0].astype(np.float64)
        else:
            planes = [
                mean[k] if mean.shape[1:] == (th, tw) else cv2.resize(mean[k], (tw, th), cv2.INTER_LINEAR)
                for k in range(c)
            ]
            values -= np.stack(planes, axis=-1).astype(np.float64)
    if spec.mean:
        values -= np.array(spec.mean, dtype=np.float64)
    if spec.std:
        values /= np.array(spec.std, dtype=np.float64)
    if not spec.pad_value:
        values[~is_image] = 0.0

    if spec.data_type == "UINT8":
        values = np.clip(np.rint(values), 0, 255)
    if spec.dimension_order == "NCHW":
        values = values.transpose(2, 0, 1)
    return values, p
