"""Hand-made networks with known answers, solid-colour images, and a gate that holds the runtime's workers,
for the runtime tests.

The colour network outputs each image's per-channel mean (pixel_scaling 1: in 0..1) as the scores of three
labels, so the answer to a solid-colour image is known without running anything: a red image scores
(blue 0, green 0, red 1). Images are binary PPMs written here (no encoder involved).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from sightd.runtime import BatchInfo, NetworkDefinition, VersionDefinition

LABELS = [{"id": 10, "name": "blue"}, {"id": 11, "name": "green"}, {"id": 12, "name": "red"}]
SPEC_OUTPUTS = [{"labels": {"roi": "NONE", "exclusive": True, "labels": LABELS}}]
POST_PROCESSINGS = [{"classification": {"output_tensor": "means", "thresholds": [0.5, 0.5, 0.5]}}]
SIZE = (16, 12)  # target width, height


def preprocessing(target: str = "16x12", **image: Any) -> dict[str, Any]:
    fields = {
        "resize_type": "SQUASH",
        "data_type": "FLOAT32",
        "dimension_order": "NCHW",
        "pixel_scaling": 1.0,
        "target_size": target,
        "color_channels": "BGR",
        **image,
    }
    return {"inputs": [{"tensor_name": "data", "image": fields}], "batched_output": True}


def colour_network(path: Path, *, padding_bytes: int = 0) -> Path:
    """data (N, 3, 12, 16) -> means (N, 3) per-channel means, and doubled (N, 3) = 2 * means. An unused
    initializer of ``padding_bytes`` makes the file (and so the cache's estimate) larger."""
    nodes = [
        helper.make_node("ReduceMean", ["data"], ["means"], axes=[2, 3], keepdims=0),
        helper.make_node("Add", ["means", "means"], ["doubled"]),
    ]
    initializers = []
    if padding_bytes:
        padding = np.arange(padding_bytes // 4, dtype=np.float32)
        initializers.append(numpy_helper.from_array(padding, "padding"))
    graph = helper.make_graph(
        nodes,
        "colours",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, SIZE[1], SIZE[0]])],
        [
            helper.make_tensor_value_info("means", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("doubled", TensorProto.FLOAT, ["N", 3]),
        ],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model, full_check=True)
    path.write_bytes(model.SerializeToString())
    return path


def version(
    network: Path,
    key: str = "version:colours",
    *,
    spec_outputs: list[dict[str, Any]] | None = None,
    post_processings: list[dict[str, Any]] | None = None,
    pre: dict[str, Any] | None = None,
    mean_files: dict[str, bytes] | None = None,
) -> VersionDefinition:
    return VersionDefinition(
        key=key,
        network_path=network,
        preprocessing=pre or preprocessing(),
        mean_files=mean_files or {},
        spec_outputs=spec_outputs or SPEC_OUTPUTS,
        post_processings=post_processings or POST_PROCESSINGS,
    )


def network(path: Path, key: str = "network:colours", pre: dict[str, Any] | None = None) -> NetworkDefinition:
    return NetworkDefinition(key=key, network_path=path, preprocessing=pre or preprocessing(), mean_files={})


def ppm(bgr: tuple[int, int, int], width: int = 20, height: int = 10) -> bytes:
    """A solid-colour binary PPM (stored RGB) of the colour (blue, green, red)."""
    blue, green, red = bgr
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[...] = (red, green, blue)
    return f"P6 {width} {height} 255\n".encode() + pixels.tobytes()


RED = (0, 0, 255)
GREEN = (0, 255, 0)
BLUE = (255, 0, 0)
NAMES = {RED: "red", GREEN: "green", BLUE: "blue"}


def top_label(result: dict[str, Any]) -> str:
    predicted = result["outputs"][0]["labels"]["predicted"]
    return str(predicted[0]["label_name"]) if predicted else ""


class Gate:
    """A batch observer that records every batch and holds the worker threads (running batches of the keys in
    ``hold``, or all) until ``open()``."""

    def __init__(self, *, closed: bool = True, hold: set[str] | None = None) -> None:
        self.hold = hold  # the keys whose batches wait; None: all
        self.batches: list[BatchInfo] = []
        self.threads: list[str] = []
        self._entered = threading.Semaphore(0)
        self._open = threading.Event()
        if not closed:
            self._open.set()

    def __call__(self, info: BatchInfo) -> None:
        self.batches.append(info)
        self.threads.append(threading.current_thread().name)
        self._entered.release()
        if self.hold is not None and info.key not in self.hold:
            return
        if not self._open.wait(timeout=120):
            raise TimeoutError("the test never opened the gate")

    async def entered(self, count: int = 1) -> None:
        """Until ``count`` more batches reached the gate."""
        for _ in range(count):
            assert await asyncio.to_thread(self._entered.acquire, timeout=60), "no batch reached the gate"

    def open(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._open.clear()

    @property
    def sizes(self) -> list[int]:
        return [b.images for b in self.batches]
