"""Shared pieces of the post-processing benchmarks: machine and version report, interleaved timing, and the
peers sightd is compared with (a NumPy reference, OpenCV's dnn NMS, torchvision's batched_nms).

torchvision is optional (about 5.5 GB with torch): `make bench-torch` installs bench/requirements-torch.txt
into the venv; without it the benchmarks skip that column and say so.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from host import cpu_model

try:  # optional peer
    import torch
    import torchvision
    from torchvision.ops import batched_nms as _tv_batched_nms

    torch.set_num_threads(1)
    TORCHVISION: str | None = torchvision.__version__
except Exception:  # not installed, or installed but unloadable: the column is skipped
    TORCHVISION = None

Boxes = npt.NDArray[np.float32]


def machine() -> dict[str, Any]:
    cpu = cpu_model()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def versions() -> dict[str, str | None]:
    import sightd

    return {
        "sightd": getattr(sightd, "__version__", "dev"),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "torch": torch.__version__ if TORCHVISION else None,
        "torchvision": TORCHVISION,
    }


def print_header(title: str) -> None:
    print(f"# {title}")
    m = machine()
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['system']}")
    v = versions()
    print("versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val))
    if not TORCHVISION:
        print("torchvision: not installed (make bench-torch installs it); its column is skipped")
    print("all single-threaded (torch.set_num_threads(1)); times are medians of interleaved runs")


def time_interleaved(
    fns: dict[str, Callable[[], object]], repeat: int, budget_s: float = 20.0
) -> dict[str, float]:
    """Median seconds per call of each function, run round-robin so that machine noise hits all alike.
    A function whose single call exceeds budget_s / repeat is run fewer times (at least once)."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm-up
    for _ in range(repeat):
        for name, fn in fns.items():
            if samples[name] and sum(samples[name]) > budget_s:
                continue
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in samples.items()}


# --- NMS peers: all take boxes [N, 4] x1 y1 x2 y2, scores [N], classes [N] and return kept indices ----------


def numpy_nms(
    boxes: Boxes, scores: npt.NDArray[Any], classes: npt.NDArray[Any], threshold: float
) -> list[int]:
    """The classic vectorised greedy NMS (py-faster-rcnn's py_cpu_nms, continuous areas), once per class."""
    kept: list[int] = []
    for cls in np.unique(classes):
        members = np.nonzero(classes == cls)[0]
        b = boxes[members].astype(np.float64)
        x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
        areas = (x2 - x1) * (y2 - y1)
        order = np.argsort(-scores[members], kind="stable")
        while order.size:
            i = order[0]
            kept.append(int(members[i]))
            rest = order[1:]
            w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
            h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
            inter = w * h
            iou = inter / (areas[i] + areas[rest] - inter)
            order = rest[iou <= threshold]
    kept.sort(key=lambda i: (-scores[i], i))
    return kept


# OpenCV's batched NMS offsets boxes by class and runs one quadratic pass: beyond this many boxes a call
# takes minutes, so the benchmarks leave it out there.
OPENCV_MAX_BOXES = 20000


def opencv_nms(
    boxes: Boxes, scores: npt.NDArray[Any], classes: npt.NDArray[Any], threshold: float
) -> list[int]:
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).astype(np.float64)
    kept = cv2.dnn.NMSBoxesBatched(xywh, scores.astype(np.float32), classes.astype(np.int32), -1.0, threshold)
    return np.asarray(kept).reshape(-1).tolist()


def torchvision_nms(
    boxes: Boxes, scores: npt.NDArray[Any], classes: npt.NDArray[Any], threshold: float
) -> list[int]:
    kept = _tv_batched_nms(
        torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(classes), threshold
    )
    return kept.tolist()  # type: ignore[no-any-return]


def agreement(a: list[int], b: list[int]) -> float:
    """Jaccard index of two kept sets (1.0: the same boxes)."""
    sa, sb = set(a), set(b)
    return 1.0 if not sa | sb else len(sa & sb) / len(sa | sb)
