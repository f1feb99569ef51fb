"""YOLO decode + NMS benchmark: a 416x416 yolov3-tiny output (heads [255, 13, 13] and [255, 26, 26],
80 sigmoid classes) through sightd's PostProcessor, against the same decode written with NumPy (then NumPy's,
OpenCV's or torchvision's NMS). Goal: under 1 ms on one core.

Outputs are synthetic with a detector's statistics unless --outputs names an .npz holding the two heads
(real yolov3-tiny outputs, e.g. saved from onnxruntime): "typical" has a handful of objects over confident-
ly empty cells; "dense" raises every objectness so that thousands of candidates reach NMS.

    .venv/bin/python bench/decode.py [--repeat 21] [--outputs heads.npz]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
import numpy.typing as npt

import postprocess_peers
from sightd import _core

HEADS = [
    ("head13", [2.53125, 2.5625, 4.21875, 5.28125, 10.75, 9.96875], 13),
    ("head26", [0.625, 0.875, 1.4375, 1.6875, 2.3125, 3.625], 26),
]
CLASSES = 80
THRESHOLD = 0.3
DISCARD = 0.025
NMS = 0.45

F32 = npt.NDArray[np.float32]


def synthetic_heads(rng: np.random.Generator, scenario: str) -> dict[str, F32]:
    heads: dict[str, F32] = {}
    for name, _, size in HEADS:
        x = np.empty((3, 5 + CLASSES, size, size), np.float32)
        x[:, 0:2] = rng.normal(0, 1, (3, 2, size, size))
        x[:, 2:4] = rng.normal(0, 0.5, (3, 2, size, size))
        x[:, 4] = rng.normal(-9 if scenario == "typical" else -1, 2, (3, size, size))
        x[:, 5:] = rng.normal(-8 if scenario == "typical" else -2, 2, (3, CLASSES, size, size))
        for _ in range(4):  # objects: a few neighbouring cells and anchors confident about one class
            row, col, cls = rng.integers(0, size - 1), rng.integers(0, size - 1), rng.integers(0, CLASSES)
            x[:, 4, row : row + 2, col : col + 2] = rng.uniform(0, 4, (3, 2, 2))
            x[:, 5 + cls, row : row + 2, col : col + 2] = rng.uniform(1, 5, (3, 2, 2))
        heads[name] = x.reshape(1, 3 * (5 + CLASSES), size, size)
    return heads


def letterbox(width: int, height: int, size: int = 416) -> _core.Transform:
    scale = min(size / width, size / height)
    t = _core.Transform()
    t.image_width, t.image_height = width, height
    t.crop_width, t.crop_height = width, height
    t.scale_x = t.scale_y = scale
    t.offset_x, t.offset_y = (size - width * scale) / 2, (size - height * scale) / 2
    t.tensor_width = t.tensor_height = size
    return t


def core_processor() -> _core.PostProcessor:
    config = _core.PostProcessingConfig()
    config.spec.roi = _core.RoiType.BBOX
    config.spec.labels = [_core.SpecLabel(i, f"class{i}") for i in range(CLASSES)]
    config.detection.format = _core.DetectionFormat.YOLO
    config.detection.yolo.heads = [_core.YoloHead(name, anchors) for name, anchors, _ in HEADS]
    config.detection.yolo.class_activation = _core.Activation.SIGMOID
    config.detection.discard_threshold = DISCARD
    config.detection.nms_threshold = NMS
    config.thresholds = [THRESHOLD] * CLASSES
    return _core.PostProcessor(config)


def numpy_decode(heads: dict[str, F32], xp: Any = np) -> tuple[Any, Any, Any]:
    """Vectorised YOLOv3 decode (the way a NumPy or torch user writes it): every score, then a mask."""
    boxes, scores, classes = [], [], []
    for name, anchors, size in HEADS:
        x = xp.asarray(heads[name]).reshape(3, 5 + CLASSES, size, size)
        obj = 1 / (1 + xp.exp(-x[:, 4]))
        cls = 1 / (1 + xp.exp(-x[:, 5:]))
        score = obj[:, None] * cls  # [A, C, H, W]
        a, c, r, k = xp.nonzero(score >= DISCARD) if xp is np else xp.nonzero(score >= DISCARD, as_tuple=True)
        anchor = xp.asarray(np.asarray(anchors, np.float32).reshape(3, 2))
        cx = (k + 1 / (1 + xp.exp(-x[a, 0, r, k]))) / size
        cy = (r + 1 / (1 + xp.exp(-x[a, 1, r, k]))) / size
        w = xp.exp(x[a, 2, r, k]) * anchor[a, 0] / size
        h = xp.exp(x[a, 3, r, k]) * anchor[a, 1] / size
        boxes.append(xp.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1) * 416)
        scores.append(score[a, c, r, k])
        classes.append(c)
    cat = np.concatenate if xp is np else xp.cat
    return cat(boxes), cat(scores), cat(classes)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--scenarios", nargs="+", default=["typical", "dense"])
    parser.add_argument("--outputs", help=".npz with head13 [1,255,13,13] and head26 [1,255,26,26]")
    args = parser.parse_args(argv)

    postprocess_peers.print_header(
        "YOLO decode + NMS (yolov3-tiny 416x416, 80 classes): sightd core vs peers"
    )
    rng = np.random.default_rng(0)
    processor = core_processor()
    transform = letterbox(768, 576)
    scenarios: list[tuple[str, dict[str, F32]]] = []
    if args.outputs:
        with np.load(args.outputs) as data:
            scenarios.append(("file", {name: data[name].astype(np.float32) for name, _, _ in HEADS}))
    else:
        scenarios = [(s, synthetic_heads(rng, s)) for s in args.scenarios]
    results: list[dict[str, Any]] = []
    for scenario, heads in scenarios:

        def numpy_peer(h: dict[str, F32] = heads) -> list[int]:
            b, s, c = numpy_decode(h)
            return postprocess_peers.numpy_nms(b.astype(np.float32), s, c, NMS)

        def opencv_peer(h: dict[str, F32] = heads) -> list[int]:
            b, s, c = numpy_decode(h)
            return postprocess_peers.opencv_nms(b.astype(np.float32), s, c, NMS)

        b, _, _ = numpy_decode(heads)
        fns = {"sightd": lambda h=heads: processor.process(h, transform, True, -1), "numpy": numpy_peer}
        if len(b) <= postprocess_peers.OPENCV_MAX_BOXES:
            fns["opencv"] = opencv_peer
        if postprocess_peers.TORCHVISION:
            import torch
            from torchvision.ops import batched_nms

            def torch_peer(h: dict[str, F32] = heads) -> list[int]:
                b, s, c = numpy_decode({k: torch.from_numpy(v) for k, v in h.items()}, torch)
                return batched_nms(b, s, c, NMS).tolist()  # type: ignore[no-any-return]

            fns["torchvision"] = torch_peer
        times = postprocess_peers.time_interleaved(fns, args.repeat)
        result = processor.process(heads, transform, True, -1)
        reported = len(result.predicted) + len(result.discarded)
        row = {"scenario": scenario, "candidates": len(b), "predicted": len(result.predicted),
               "reported": reported, "ms": {k: v * 1e3 for k, v in times.items()},
               "speedup": {k: times[k] / times["sightd"] for k in times if k != "sightd"}}  # fmt: skip
        results.append(row)
        print(
            f"{scenario}: {len(b)} candidates >= {DISCARD}, {len(result.predicted)} predicted >= "
            f"{THRESHOLD}, {reported} reported after NMS {NMS}"
        )
        goal = (
            ""
            if scenario == "dense"
            else f"  (goal < 1 ms: {'met' if times['sightd'] < 1e-3 else 'NOT met'})"
        )
        print(f"  sightd      {times['sightd'] * 1e3:8.3f} ms{goal}")
        for name in ("numpy", "opencv", "torchvision"):
            if name in times:
                print(f"  {name:<11} {times[name] * 1e3:8.3f} ms  x{row['speedup'][name]:.1f}")
    print(
        "xN: the peer's time / sightd's time (higher: sightd faster); peers decode with NumPy/torch, then NMS"
    )
    report = {
        "bench": "decode",
        "machine": postprocess_peers.machine(),
        "versions": postprocess_peers.versions(),
        "results": results,
    }
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
