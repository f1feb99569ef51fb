"""NMS benchmark: sightd's core against a NumPy reference, OpenCV's cv2.dnn.NMSBoxesBatched and torchvision's
CPU batched_nms, on 1k, 10k and 100k boxes in 80 classes, clustered (detector-like: many boxes per object)
and spread (few overlaps). Prints the machine, versions, times, ratios and a final JSON line.

    .venv/bin/python bench/nms.py [--sizes 1000 10000 100000] [--repeat 7] [--threshold 0.5]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
import numpy.typing as npt

import postprocess_peers
from sightd import _core


def make_boxes(
    n: int, layout: str, classes: int, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Boxes in a 1000x1000 frame. clustered: n/50 objects, each seen by ~50 jittered boxes of its class;
    spread: independent boxes of 8 to 64 px."""
    if layout == "spread":
        centre = rng.uniform(0, 1000, (n, 2))
        size = rng.uniform(8, 64, (n, 2))
        cls = rng.integers(0, classes, n)
    else:
        objects = max(1, n // 50)
        ocentre = rng.uniform(0, 1000, (objects, 2))
        osize = rng.uniform(20, 200, (objects, 2))
        ocls = rng.integers(0, classes, objects)
        owner = rng.integers(0, objects, n)
        size = osize[owner] * np.exp(rng.normal(0, 0.1, (n, 2)))
        centre = ocentre[owner] + rng.normal(0, 0.1, (n, 2)) * osize[owner]
        cls = ocls[owner]
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1).astype(np.float32)
    return boxes, rng.uniform(0, 1, n).astype(np.float32), cls.astype(np.int64)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--layouts", nargs="+", default=["clustered", "spread"])
    parser.add_argument("--classes", type=int, default=80)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)

    postprocess_peers.print_header("NMS: sightd core vs NumPy reference, OpenCV, torchvision")
    rng = np.random.default_rng(0)
    results: list[dict[str, Any]] = []
    print(f"{'boxes':>7} {'layout':>9} {'kept':>6}  {'sightd':>9}  " + "  ".join(
        f"{name:>20}" for name in ("numpy", "opencv", "torchvision")))  # fmt: skip
    thr = args.threshold
    for n in args.sizes:
        for layout in args.layouts:
            boxes, scores, classes = make_boxes(n, layout, args.classes, rng)
            classes32 = classes.astype(np.int32)
            fns = {
                "sightd": lambda b=boxes, s=scores, c=classes32: _core.nms(b, s, c, thr),
                "numpy": lambda b=boxes, s=scores, c=classes: postprocess_peers.numpy_nms(b, s, c, thr),
            }
            if n <= postprocess_peers.OPENCV_MAX_BOXES:
                fns["opencv"] = lambda b=boxes, s=scores, c=classes: postprocess_peers.opencv_nms(
                    b, s, c, thr
                )
            if postprocess_peers.TORCHVISION:
                fns["torchvision"] = lambda b=boxes, s=scores, c=classes: postprocess_peers.torchvision_nms(
                    b, s, c, thr
                )
            # numpy at 100k takes seconds per call: fewer repeats where a call is slow.
            times = postprocess_peers.time_interleaved(fns, args.repeat)
            kept = {name: [int(i) for i in fn()] for name, fn in fns.items()}  # type: ignore[attr-defined]
            agree = {
                name: postprocess_peers.agreement(kept["sightd"], k)
                for name, k in kept.items()
                if name != "sightd"
            }
            row = {"boxes": n, "layout": layout, "classes": args.classes, "iou_threshold": thr,
                   "kept": len(kept["sightd"]), "ms": {k: v * 1e3 for k, v in times.items()},
                   "speedup": {k: times[k] / times["sightd"] for k in times if k != "sightd"},
                   "agreement": agree}  # fmt: skip
            results.append(row)
            cells = []
            for name in ("numpy", "opencv", "torchvision"):
                if name in times:
                    cells.append(f"{times[name] * 1e3:9.3f} ms x{row['speedup'][name]:6.1f}")
                else:
                    cells.append(f"{'-':>20}")
            print(
                f"{n:>7} {layout:>9} {len(kept['sightd']):>6}  {times['sightd'] * 1e3:6.3f} ms  "
                + "  ".join(cells)
            )
            if any(a < 1.0 for a in agree.values()):
                print(f"        kept sets differ from sightd's (Jaccard): {agree}")
    print(
        "xN: the peer's time / sightd's time (higher: sightd faster); "
        f"opencv is left out above {postprocess_peers.OPENCV_MAX_BOXES} boxes (minutes per call)"
    )
    report = {
        "bench": "nms",
        "machine": postprocess_peers.machine(),
        "versions": postprocess_peers.versions(),
        "results": results,
    }
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
