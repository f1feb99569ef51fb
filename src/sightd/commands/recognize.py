"""``sightd recognize``: run public models of the built zoo on image files and print v0.7 results.

    sightd recognize --model NAME [--model NAME]... | --model all  [--zoo DIR] [--samples]
                     [--bbox XMIN,YMIN,XMAX,YMAX] [--show-discarded] [--max-predictions N]
                     [--threads N] [--provider auto|cpu|cuda] [--pretty] [IMAGE...]

One JSON document per model and image: {"model": ..., "image": ..., "result": {"outputs": [...]}} with the
v0.7 inference result, or {"model": ..., "image": ..., "error": {"type", "code", "field", "message"}}. The
exit status is 0 when every image was recognised, 1 when one failed, 2 for a bad option or a zoo that is
not built.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sightd import _core, engine
from sightd.errors import CoreError
from sightd.recognition import DEFAULT_INTRA_OP_THREADS, Recognizer, SessionSettings, result_json
from sightd.zoo import artifacts, catalog, installed

# The photos --samples adds: (pinned artifact, folder inside it, file).
SAMPLES: tuple[tuple[str, str, str], ...] = (
    ("darknet", "usr/share/darknet/data", "dog.jpg"),
    ("darknet", "usr/share/darknet/data", "person.jpg"),
    ("scikit-image", "skimage/data", "chelsea.png"),
    ("scikit-image", "skimage/data", "astronaut.png"),
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "recognize",
        help="run public models of the zoo on image files and print v0.7 results",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="NAME",
        help=f"public model ({', '.join(sorted(catalog.MODELS))}) or 'all'; repeatable",
    )
    parser.add_argument("--zoo", type=Path, default=None, help="the built zoo (default: <cache>/models)")
    parser.add_argument("--samples", action="store_true", help="add the sample photos of the test artifacts")
    parser.add_argument("--bbox", default=None, metavar="XMIN,YMIN,XMAX,YMAX", help="normalised roi")
    parser.add_argument("--show-discarded", action="store_true", help="report discarded predictions too")
    parser.add_argument("--max-predictions", type=int, default=None, metavar="N", help="cap per list")
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_INTRA_OP_THREADS,
        help=f"ONNX Runtime intra-op threads (default {DEFAULT_INTRA_OP_THREADS}; 0: one per core)",
    )
    parser.add_argument("--provider", choices=engine.PROVIDERS, default="auto", help="execution provider")
    parser.add_argument("--pretty", action="store_true", help="indented JSON")
    parser.add_argument("images", nargs="*", type=Path, metavar="IMAGE")
    parser.set_defaults(handler=run)


def _models(names: list[str]) -> list[str]:
    models: list[str] = []
    for name in names:
        for model in sorted(catalog.MODELS) if name == "all" else [name]:
            if model not in catalog.MODELS:
                known = ", ".join(sorted(catalog.MODELS))
                raise ValueError(f"unknown public model {model!r} (known: {known})")
            if model not in models:
                models.append(model)
    return models


def _roi(text: str | None) -> _core.Roi | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise ValueError(f"--bbox takes XMIN,YMIN,XMAX,YMAX, not {text!r}")
    roi = _core.Roi(bbox=(values[0], values[1], values[2], values[3]))
    _core.validate_roi(roi)
    return roi


def _images(args: argparse.Namespace) -> list[Path]:
    paths = list(args.images)
    if args.samples:
        paths += [artifacts.extract_folder(name, folder) / file for name, folder, file in SAMPLES]
    if not paths:
        raise ValueError("no image: give IMAGE files or --samples")
    return paths


def _error_json(error: CoreError | None) -> dict[str, Any]:
    if error is None:
        return {"type": "CoreError", "code": "INTERNAL", "field": "", "message": "recognition failed"}
    return {"type": type(error).__name__, "code": error.code, "field": error.field, "message": error.message}


def run(args: argparse.Namespace) -> int:
    try:
        if args.threads < 0:
            raise ValueError("--threads must be 0 or more")
        if args.max_predictions is not None and args.max_predictions < 0:
            raise ValueError("--max-predictions must be 0 or more")
        models = _models(args.model)
        roi = _roi(args.bbox)
        paths = _images(args)
        images = [(path.read_bytes(), roi) for path in paths]
        zoo = installed.load(args.zoo)
        settings = SessionSettings(intra_op_threads=args.threads, execution_provider=args.provider)
        recognizers = [(name, Recognizer.from_zoo(name, zoo, session=settings)) for name in models]
    except (OSError, ValueError, CoreError, installed.ZooNotBuiltError) as error:
        print(f"sightd recognize: {error}", file=sys.stderr)
        return 2
    failed = False
    indent = 2 if args.pretty else None
    for name, recognizer in recognizers:
        results = recognizer.recognize(
            images, show_discarded=args.show_discarded, max_predictions=args.max_predictions
        )
        for path, result in zip(paths, results, strict=True):
            document: dict[str, Any] = {"model": name, "image": str(path)}
            if result.ok:
                document["result"] = result_json(result)
            else:
                failed = True
                document["error"] = _error_json(result.error)
            print(json.dumps(document, indent=indent))
    return 1 if failed else 0
