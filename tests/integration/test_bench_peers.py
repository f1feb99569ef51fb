"""Smoke tests of the serving benchmark's peers (bench/peers/, in .venv-peers: `make peers`): each peer,
started through ``launch.start`` on a free port, answers dog.jpg with what the model sources document, refuses
a body that is not an image with a 4xx and goes on serving, and ``launch.stop`` leaves no process behind.

The expectations are the independent observations of /work/shared/reference/model-sources.md (as
tests/models/zoo_observations.py lists them, same tolerances): imagenet-mobilenet-v2 top-1 malamute 0.76;
coco-yolov3-tiny car 0.70, dog 0.60, bicycle 0.59 with their boxes, and the truck (0.41, model-sources.md's
tagger score) that sightd's detector also reports (tests/models/test_zoo_core.py reads the same detections
through the core).
"""

from __future__ import annotations

import importlib
import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sightd.zoo import installed

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
launch = importlib.import_module("peers.launch")

DOG_SIZE = (768, 576)
SCORE_TOLERANCE = 0.02
BOX_TOLERANCE = 0.02  # of the image's width (x) or height (y)
# model-sources.md, darknet dog.jpg: label, score, box (x1, y1, x2, y2 in pixels; None: not observed)
MOBILENET_TOP1 = ("malamute", 0.76)
YOLO_DOG: list[tuple[str, float, tuple[int, int, int, int] | None]] = [
    ("car", 0.70, (466, 71, 680, 170)),
    ("dog", 0.60, (133, 188, 370, 513)),
    ("bicycle", 0.59, (205, 151, 577, 448)),
    ("truck", 0.41, None),
]
# What sightd's detector reports on dog.jpg at its thresholds (0.3; NMS 0.45 per class), best first.
YOLO_DOG_LABELS = ["car", "car", "dog", "bicycle", "truck"]
SERVED = [(peer, model) for peer in launch.PEERS for model in launch.MODELS]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def post(port: int, body: bytes) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict",
        data=body,
        headers={"Content-Type": "application/octet-stream"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture(scope="module")
def dog(darknet_data: Path) -> bytes:
    return (darknet_data / "dog.jpg").read_bytes()


def started(peer: str, model: str, log: Path, **options: Any) -> tuple[subprocess.Popen[bytes], int]:
    assert launch.available(peer) is None, launch.available(peer)
    port = free_port()
    return launch.start(peer, model, port, log, **options), port


@pytest.fixture(scope="module", params=SERVED, ids=lambda p: f"{p[0]}-{p[1]}")
def served(
    request: pytest.FixtureRequest, zoo: installed.Zoo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int]]:
    """(model, port) of a running peer."""
    peer, model = request.param
    process, port = started(peer, model, tmp_path_factory.mktemp("peers") / f"{peer}.log")
    try:
        yield model, port
    finally:
        launch.stop(process)


def assert_answers_dog(model: str, answer: dict[str, Any]) -> None:
    predictions = answer["predictions"]
    scores = [p["score"] for p in predictions]
    assert scores == sorted(scores, reverse=True)
    if model == "imagenet-mobilenet-v2":
        assert len(predictions) == 5
        assert all("box" not in p for p in predictions)
        label, score = MOBILENET_TOP1
        assert predictions[0]["label_name"] == label
        assert abs(predictions[0]["score"] - score) <= SCORE_TOLERANCE, predictions[0]
        return
    width, height = DOG_SIZE
    for label, score, box in YOLO_DOG:
        mine = [p for p in predictions if p["label_name"] == label]
        assert mine, f"no {label} in {predictions}"
        best = mine[0]  # best first
        assert abs(best["score"] - score) <= SCORE_TOLERANCE, best
        if box is not None:
            pixels = [v * s for v, s in zip(best["box"], (width, height, width, height), strict=True)]
            limits = (width * BOX_TOLERANCE, height * BOX_TOLERANCE) * 2
            assert all(abs(a - b) <= t for a, b, t in zip(pixels, box, limits, strict=True)), (best, box)
    # Nothing else: the five boxes sightd reports (the second car is the truck's box).
    assert [p["label_name"] for p in predictions] == YOLO_DOG_LABELS
    for p in predictions:
        x1, y1, x2, y2 = p["box"]
        assert 0.0 <= x1 < x2 <= 1.0
        assert 0.0 <= y1 < y2 <= 1.0


def test_peer_answers_dog_as_the_model_sources(served: tuple[str, int], dog: bytes) -> None:
    model, port = served
    status, answer = post(port, dog)
    assert status == 200, answer
    assert_answers_dog(model, answer)


@pytest.mark.parametrize(
    "body", [b"not an image", b"\xff\xd8\xff\xe0" + b"\x00" * 64], ids=["text", "jpeg-header"]
)
def test_peer_refuses_a_body_that_is_not_an_image(served: tuple[str, int], dog: bytes, body: bytes) -> None:
    model, port = served
    status, _ = post(port, body)
    assert 400 <= status < 500
    status, answer = post(port, dog)  # and still serves
    assert status == 200
    assert_answers_dog(model, answer)


def test_bentoml_with_adaptive_batching(zoo: installed.Zoo, tmp_path: Path, dog: bytes) -> None:
    """The batching variant (a batchable inference service behind the 2-worker front) answers the same."""
    process, port = started(
        "bentoml", "imagenet-mobilenet-v2", tmp_path / "bentoml.log", bentoml_batching=True
    )
    try:
        status, answer = post(port, dog)
        assert status == 200, answer
        assert_answers_dog("imagenet-mobilenet-v2", answer)
    finally:
        launch.stop(process)


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] != "Z"


@pytest.mark.parametrize("peer", launch.PEERS)
def test_stop_leaves_no_process_behind(peer: str, zoo: installed.Zoo, tmp_path: Path) -> None:
    process, port = started(peer, "imagenet-mobilenet-v2", tmp_path / f"{peer}.log")
    pids = launch.processes(process)
    assert process.pid in pids
    if peer == "bentoml":
        assert len(pids) >= 3  # BentoML's supervisor and its 2 workers
    launch.stop(process)
    assert process.returncode is not None
    assert [pid for pid in pids if alive(pid)] == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_unknown_peer_or_model_is_refused(zoo: installed.Zoo, tmp_path: Path) -> None:
    assert launch.available("torchserve") is not None
    with pytest.raises(ValueError, match="unknown model"):
        launch.model_config("nsfw-v1", zoo)
