"""Independent references of the service tests: what the public models answer by their source projects'
own recipes, computed without sightd."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image

from sightd.zoo import installed


def mobilenet_reference(zoo: installed.Zoo, image: Path) -> np.ndarray:
    """imagenet-mobilenet-v2's class probabilities by an independent recipe: torchvision's preprocessing
    (PIL: short side to 256 bilinear with antialias, centre crop 224, ImageNet mean and std) and
    onnxruntime's Python API, softmax in NumPy."""
    rgb = Image.open(image).convert("RGB")
    w, h = rgb.size
    nw, nh = (256, int(256 * h / w)) if w < h else (int(256 * w / h), 256)
    resized = np.asarray(rgb.resize((nw, nh), Image.BILINEAR), np.float32) / 255
    top, left = round((nh - 224) / 2), round((nw - 224) / 2)
    crop = resized[top : top + 224, left : left + 224]
    normalised = (crop - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    tensor = np.ascontiguousarray(normalised.transpose(2, 0, 1)[None], np.float32)
    session = onnxruntime.InferenceSession(str(zoo.networks["imagenet-mobilenet-v2"].path))
    (logits,) = session.run(["logits"], {"input": tensor})
    e = np.exp(logits[0] - logits[0].max())
    return np.asarray(e / e.sum())
