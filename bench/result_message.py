"""What answering one recognition costs the gRPC service after the core call, side by side on real results:

- **python**: the way a Python service builds it, and the way sightd did before the core serialized it: the
  v0.7 document from the core's result (``result_json``), the RecognizeResponse message built from it field
  by field (``sightd.grpc.inference.result_message``), and protobuf's serialization of it;
- **core**: the message serialized by the core (``_core.RecognitionResult.message``, read once by the
  runtime's ``ImageOutcome``) and wrapped in the response's bytes (``recognize_response``), which the server
  sends as they are.

Both give the same bytes (tests/integration/test_result_message.py). Per public model on dog.jpg: the
default answer (max_predictions 5 for the classifier, 100 for the detector), and the one with the discarded
predictions. Rounds alternate between the two paths. Prints the machine, the versions, a table with the
median µs per answer and the ratio, then one JSON line.

Usage: python bench/result_message.py [--rounds N] [--answers N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import google.protobuf

from host import cpu_model
from postprocess_peers import machine
from sightd import __version__, _core
from sightd.grpc.inference import recognize_response, result_message
from sightd.recognition import Recognizer, result_json
from sightd.runtime import ImageOutcome
from sightd.v1 import inference_pb2
from sightd.zoo import artifacts, build, installed

CASES = (
    ("imagenet-mobilenet-v2", 5, False),
    ("imagenet-mobilenet-v2", 5, True),
    ("coco-yolov3-tiny", 100, False),
    ("coco-yolov3-tiny", 100, True),
)


def per_answer_us(answer: Callable[[], object], answers: int) -> float:
    start = time.perf_counter()
    for _ in range(answers):
        answer()
    return (time.perf_counter() - start) / answers * 1e6


def python_path(found: _core.RecognitionResult) -> Callable[[], bytes]:
    def python() -> bytes:
        message = result_message(result_json(found))
        return inference_pb2.RecognizeResponse(result=message).SerializeToString()

    return python


def core_path(found: _core.RecognitionResult) -> Callable[[], object]:
    def core() -> object:
        return recognize_response(ImageOutcome(found))

    return core


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--answers", type=int, default=500, help="answers per path and round")
    args = parser.parse_args()

    build.build()
    zoo = installed.load()
    dog = (artifacts.extract_folder("darknet", "usr/share/darknet/data") / "dog.jpg").read_bytes()
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"python {platform.python_version()}, protobuf {google.protobuf.__version__}, sightd {__version__}")
    print(f"{'model':24s}{'discarded':>10s}{'predictions':>12s}{'bytes':>7s}{'python us':>11s}{'core us':>9s}"
          f"{'x faster':>9s}")  # fmt: skip
    results: list[dict[str, Any]] = []
    recognizers: dict[str, Recognizer] = {}
    for model, max_predictions, show_discarded in CASES:
        recognizer = recognizers.setdefault(model, Recognizer.from_zoo(model, zoo))
        (found,) = recognizer.recognize(
            [(dog, None)], max_predictions=max_predictions, show_discarded=show_discarded
        )

        python, core = python_path(found), core_path(found)
        if core() != python():
            raise AssertionError(f"{model}: the two paths answer different bytes")
        times: dict[str, list[float]] = {"python": [], "core": []}
        for _ in range(args.rounds):
            times["python"].append(per_answer_us(python, args.answers))
            times["core"].append(per_answer_us(core, args.answers))
        python_us = statistics.median(times["python"])
        core_us = statistics.median(times["core"])
        labels = inference_pb2.RecognitionResult.FromString(found.message or b"").outputs[0].labels
        predictions = len(labels.predicted) + len(labels.discarded)
        size = len(python())
        print(f"{model:24s}{show_discarded!s:>10s}{predictions:12d}{size:7d}{python_us:11.1f}{core_us:9.1f}"
              f"{python_us / core_us:9.1f}")  # fmt: skip
        results.append(
            {
                "model": model,
                "show_discarded": show_discarded,
                "predictions": predictions,
                "bytes": size,
                "python_us": round(python_us, 2),
                "core_us": round(core_us, 2),
                "ratio_python_over_core": round(python_us / core_us, 2),
            }
        )
    versions = {"sightd": __version__, "protobuf": google.protobuf.__version__}
    record = {"bench": "result_message", "machine": machine(), "versions": versions, "rounds": args.rounds}
    print(json.dumps({**record, "results": results}))


if __name__ == "__main__":
    main()
