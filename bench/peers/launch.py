"""Starting and stopping the peers of the serving benchmark: the servers a user would otherwise run.

Runs in the main venv (it reads the zoo); each peer runs in .venv-peers (`make peers`: FastAPI, uvicorn,
BentoML, Pillow, NumPy, onnxruntime; no sightd), in a process group of its own:

- ``diy``: FastAPI + uvicorn (one worker), the whole pipeline inline in an ``async def`` endpoint;
- ``diy_threadpool``: the same server with the pipeline run in the thread pool (``run_in_threadpool``);
- ``bentoml``: a BentoML service with 2 workers (``bentoml serve``), the same pipeline in a sync API.

Every peer serves ``POST /predict`` (body: the encoded image) answering
``{"predictions": [{"label_name", "score", "box"?}, ...]}`` best first, and ``GET /healthz``. The pipeline
(pipeline.py) takes the ONNX file, the labels and the preprocessing and post-processing parameters of the
model from the built zoo, through a JSON config that ``start`` writes next to the log.

Usage (bench/ on sys.path)::

    from peers import launch
    process = launch.start("diy", "imagenet-mobilenet-v2", port, Path("diy.log"))
    try: ...  # POST http://127.0.0.1:{port}/predict
    finally: launch.stop(process)
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from sightd.zoo import installed

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENV = ROOT / ".venv-peers"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".installed"  # written by `make peers` once the requirements are installed

PEERS: tuple[str, ...] = ("diy", "diy_threadpool", "bentoml")
MODELS: tuple[str, ...] = ("imagenet-mobilenet-v2", "coco-yolov3-tiny")
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
BENTOML_WORKERS = 2

Json = dict[str, Any]


def available(peer: str) -> str | None:
    """None when the peer can be started, else why not."""
    if peer not in PEERS:
        return f"unknown peer {peer!r} (one of {', '.join(PEERS)})"
    if not STAMP.is_file() or not PYTHON.is_file():
        return f"{VENV.relative_to(ROOT)} is not installed (run `make peers`)"
    return None


# --- the model's config, from the zoo ---------------------------------------------------------------


def _size(value: object) -> list[int]:
    text = str(value)
    width, _, height = text.partition("x")
    return [int(width), int(height or width)]


def _require(model: str, what: str, actual: object, expected: object) -> None:
    if actual != expected:
        raise ValueError(f"{model}: {what} is {actual!r}; the peers' pipeline implements {expected!r} only")


def _labels(
    model: installed.InstalledModel, post: Json, default_threshold: float
) -> tuple[list[str], list[float]]:
    """The spec's label names and thresholds by network class (the peers serve every class of the network)."""
    listed = model.spec["outputs"][0]["labels"]["labels"]
    indices = post.get("class_indices", list(range(len(listed))))
    thresholds = post.get("thresholds", [default_threshold] * len(listed))
    names: dict[int, str] = {}
    by_class: dict[int, float] = {}
    for label, index, threshold in zip(listed, indices, thresholds, strict=True):
        names[int(index)] = str(label["name"])
        by_class[int(index)] = float(threshold)
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"{model.name}: the peers serve models whose labels cover the network's classes")
    return [names[i] for i in range(len(names))], [by_class[i] for i in range(len(names))]


def model_config(model: str, zoo: installed.Zoo | None = None, *, intra_op_threads: int = 0) -> Json:
    """What pipeline.py needs of a public model of the zoo (checked to be what it implements)."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r} (one of {', '.join(MODELS)})")
    zoo = zoo or installed.load()
    public = zoo.models[model]
    network = zoo.networks[public.network]
    (tensor,) = network.preprocessing["inputs"]
    image: Json = tensor["image"]
    for field, expected in [
        ("color_channels", "RGB"),
        ("dimension_order", "NCHW"),
        ("data_type", "FLOAT32"),
        ("interpolation", "LINEAR"),
        ("antialias", True),
        ("pixel_scaling", 1.0),
        ("mean_file", ""),
    ]:
        _require(model, field, image.get(field, ""), expected)
    config: Json = {
        "model": model,
        "onnx": str(network.path),
        "input": tensor["tensor_name"],
        "size": _size(image["target_size"]),
        "intra_op_threads": intra_op_threads,
    }
    if "classification" in public.post_processing:
        post = public.post_processing["classification"]
        _require(model, "resize_type", image["resize_type"], "CROP")
        _require(model, "activation", post.get("activation", "NONE"), "SOFTMAX")
        labels, _ = _labels(public, post, 0.025)
        config |= {
            "task": "classification",
            "crop_ratio": float(image.get("crop_ratio", 1.0)),
            "mean": image.get("mean", [0.0, 0.0, 0.0]),
            "std": image.get("std", [1.0, 1.0, 1.0]),
            "output": post["output_tensor"],
            "labels": labels,
            "top": 5,
        }
    else:
        post = public.post_processing["detection"]
        _require(model, "resize_type", image["resize_type"], "LETTERBOX")
        _require(model, "letterbox_align", image.get("letterbox_align", "CENTER"), "CENTER")
        _require(model, "mean", image.get("mean"), None)
        _require(model, "std", image.get("std"), None)
        _require(model, "nms_class_agnostic", post.get("nms_class_agnostic", False), False)
        yolo = post["yolo_output"]
        _require(model, "class_activation", yolo.get("class_activation", "SOFTMAX"), "SIGMOID")
        labels, thresholds = _labels(public, post, 0.8)
        config |= {
            "task": "detection",
            "pad_value": int(image.get("pad_value", 0)),
            "heads": [
                {"output": h["output_tensor"], "anchors": h["anchors"]} for h in yolo["output_tensors"]
            ],
            "labels": labels,
            "thresholds": thresholds,
            "nms_threshold": float(post.get("nms_threshold", 0.3)),
        }
    return config


# --- processes --------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, process group) of a live process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2])


def _live() -> dict[int, tuple[str, int, int]]:
    """Every running process (zombies left out) by pid."""
    live = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None and stat[0] != "Z":
            live[int(entry.name)] = stat
    return live


def processes(process: subprocess.Popen[bytes]) -> list[int]:
    """The peer's running processes: its own, its descendants, and whatever else is left in its group."""
    live = _live()
    found: set[int] = set()
    if process.returncode is None:  # not reaped: its pid (and group id) cannot belong to another process
        found = {pid for pid, (_, _, group) in live.items() if process.pid in (pid, group)}
    grew = True
    while grew:
        children = {pid for pid, (_, parent, _) in live.items() if parent in found} - found
        found |= children
        grew = bool(children)
    return sorted(found)


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the peer's whole process group (and any descendant that left it), and wait until all are
    gone: SIGTERM first, SIGKILL after STOP_TIMEOUT_S."""
    tracked = set(processes(process))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.returncode is None:  # not reaped yet: the group id (the peer's pid) is still its own
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)
        _signal(sorted(tracked), sig)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            tracked = (tracked & set(_live())) | set(processes(process))
            if process.poll() is not None and not tracked:
                return
            time.sleep(0.05)
    process.wait(timeout=STOP_TIMEOUT_S)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException):  # URLError is an OSError
        return False


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def command(peer: str, port: int, config_path: Path) -> list[str]:
    """The peer's command line (run with .venv-peers/bin/python, in bench/peers/)."""
    if peer in ("diy", "diy_threadpool"):
        arguments = [str(HERE / "diy_server.py"), "--config", str(config_path), "--port", str(port)]
        return [str(PYTHON), *arguments, *(["--threadpool"] if peer == "diy_threadpool" else [])]
    if peer == "bentoml":
        return [
            str(PYTHON),
            "-m",
            "bentoml",
            "serve",
            "bentoml_service:Peer",
            "--working-dir",
            str(HERE),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
    raise ValueError(f"unknown peer {peer!r} (one of {', '.join(PEERS)})")


def start(
    peer: str,
    model: str,
    port: int,
    log: Path,
    *,
    intra_op_threads: int = 0,
    bentoml_workers: int = BENTOML_WORKERS,
    bentoml_batching: bool = False,
) -> subprocess.Popen[bytes]:
    """Start a peer serving a model on 127.0.0.1:port, its output in ``log``; return once GET /healthz
    answers 200 (the model is loaded). Raises RuntimeError with the log's tail when it does not within
    START_TIMEOUT_S (the process is stopped then).

    intra_op_threads: onnxruntime's intra-op threads per session (0: onnxruntime's default, the number of
    cores). bentoml_workers and bentoml_batching (BentoML's adaptive batching: the pipeline's inference in a
    batchable model service behind the 2-worker front) only apply to ``bentoml``.
    """
    if (why := available(peer)) is not None:
        raise RuntimeError(why)
    log.parent.mkdir(parents=True, exist_ok=True)
    config = model_config(model, intra_op_threads=intra_op_threads) | {
        "workers": bentoml_workers,
        "batching": bentoml_batching,
    }
    config_path = log.with_name(log.name + ".config.json")
    config_path.write_text(json.dumps(config, indent=1), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env |= {
        "PATH": f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "SIGHTD_PEER_CONFIG": str(config_path),
        # BentoML keeps its store and its prometheus files under BENTOML_HOME, and reports usage unless told.
        "BENTOML_HOME": str(log.with_name(log.name + ".bentoml")),
        "BENTOML_DO_NOT_TRACK": "True",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            command(peer, port, config_path),
            cwd=HERE,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stop(process)
            raise RuntimeError(f"{peer} exited with {process.returncode}; {log}:\n{_tail(log)}")
        if _healthy(port):
            return process
        time.sleep(0.1)
    stop(process)
    raise RuntimeError(f"{peer} did not answer /healthz within {START_TIMEOUT_S:.0f} s; {log}:\n{_tail(log)}")
