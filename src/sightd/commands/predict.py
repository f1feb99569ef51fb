"""``sightd predict``: run a network on image files through the core's pipeline and print its outputs.

    sightd predict --network MODEL.onnx --preprocessing PRE.json [--mean-file NAME=PATH] [--threads N]
                   [--provider auto|cpu|cuda] [--output NAME]... [--values K] IMAGE...

For each image: the transform of each image input (how the image maps into the tensor) and, for each output
tensor, its name, shape, dtype and first values. The exit status is 0 when every image ran, 1 when one
failed (its error is printed), 2 for a bad network, preprocessing or option.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from sightd import _core, engine
from sightd.errors import CoreError
from sightd.preprocessing import parse_preprocessing


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="run a network on image files and print its output tensors",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--network", required=True, type=Path, help="the ONNX model file")
    parser.add_argument(
        "--preprocessing", required=True, type=Path, help="the v0.7 preprocessing document (JSON file)"
    )
    parser.add_argument(
        "--mean-file",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="the file a mean_file NAME of the preprocessing refers to (default: NAME next to the JSON file)",
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="ONNX Runtime intra-op threads and decoding threads (0: auto)"
    )
    parser.add_argument("--provider", choices=engine.PROVIDERS, default="auto", help="execution provider")
    parser.add_argument(
        "--output", action="append", default=[], metavar="NAME", help="output tensor to print (default: all)"
    )
    parser.add_argument(
        "--values", type=int, default=8, metavar="K", help="leading values printed per tensor"
    )
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    parser.set_defaults(handler=run)


def _mean_files(document: Any, preprocessing: Path, given: Sequence[str]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for item in given:
        name, separator, path = item.partition("=")
        if not separator or not name or not path:
            raise ValueError(f"--mean-file takes NAME=PATH, not {item!r}")
        files[name] = Path(path).read_bytes()
    inputs = document.get("inputs", []) if isinstance(document, dict) else []
    for entry in inputs:
        image = entry.get("image") if isinstance(entry, dict) else None
        mean_file = image.get("mean_file") if isinstance(image, dict) else None
        if isinstance(mean_file, str) and mean_file and mean_file not in files:
            beside = preprocessing.parent / mean_file
            if beside.is_file():
                files[mean_file] = beside.read_bytes()
    return files


def _format_transform(transform: _core.Transform) -> str:
    return (
        f"image {transform.image_width}x{transform.image_height}, "
        f"crop ({transform.crop_x:g}, {transform.crop_y:g}, "
        f"{transform.crop_width:g}x{transform.crop_height:g}), "
        f"scale ({transform.scale_x:.6g}, {transform.scale_y:.6g}), "
        f"offset ({transform.offset_x:g}, {transform.offset_y:g}), "
        f"tensor {transform.tensor_width}x{transform.tensor_height}"
    )


def _format_values(array: np.ndarray[Any, Any], count: int) -> str:
    flat = array.reshape(-1)
    shown = flat[:count]
    if np.issubdtype(array.dtype, np.floating):
        text = " ".join(f"{float(v):.6g}" for v in shown)
    else:
        text = " ".join(str(v) for v in shown.tolist())
    return text + (" ..." if flat.size > count else "")


def print_result(name: str, result: _core.ImageResult, values: int, out: TextIO) -> None:
    if not result.ok:
        error = result.error
        print(f"{name}: {type(error).__name__}: {error}", file=out)
        return
    print(f"{name}:", file=out)
    for index, transform in enumerate(result.transforms):
        print(f"  transform [{index}]: {_format_transform(transform)}", file=out)
    for output_name, array in result.outputs.items():
        shape = "[" + ", ".join(str(d) for d in array.shape) + "]"
        print(f"  {output_name} {array.dtype} {shape}: {_format_values(array, values)}", file=out)


def run(args: argparse.Namespace) -> int:
    try:
        document = json.loads(args.preprocessing.read_text(encoding="utf-8"))
        spec = parse_preprocessing(document, _mean_files(document, args.preprocessing, args.mean_file))
        if args.threads < 0:
            raise ValueError("--threads must be 0 or more")
        session = engine.create_session(
            args.network, intra_op_threads=args.threads, execution_provider=args.provider
        )
        pool = _core.ThreadPool(max(0, args.threads - 1)) if args.threads else None
        pipeline = _core.Pipeline(session, spec, list(args.output), pool=pool)
        images = [(path.read_bytes(), None) for path in args.images]
    except (OSError, ValueError, CoreError) as error:
        print(f"sightd predict: {error}", file=sys.stderr)
        return 2
    print(f"network {args.network} on {session.provider}", file=sys.stdout)
    for line in engine.describe_tensors(session.inputs):
        print(f"  input  {line}")
    results = pipeline.run(images)
    for path, result in zip(args.images, results, strict=True):
        print_result(str(path), result, args.values, sys.stdout)
    return 0 if all(result.ok for result in results) else 1
