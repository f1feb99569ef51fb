"""The BentoML peer: the same pipeline (pipeline.py) served by BentoML, as its documentation shows it.

Default: one service, ``Peer``, with 2 workers (processes), each loading the model and serving the whole
pipeline in a sync API (BentoML runs it in its thread pool, one request at a time per worker by default).

With ``"batching": true`` in the config, BentoML's adaptive batching: ``Peer`` (the 2 workers) decodes and
preprocesses, then calls ``Inference``, a service of its own (one worker) whose batchable API runs the
network on the tensors BentoML gathers from concurrent requests (up to ``max_batch_size``), and post-processes
the answer. That is BentoML's way to batch behind a front that takes raw bytes.

``POST /predict`` (body: the encoded image, Content-Type application/octet-stream) answers
``{"predictions": [...]}``; a body that is not an image gets 400. BentoML serves ``GET /healthz``.

Runs in .venv-peers, from bench/peers/, the config's path in SIGHTD_PEER_CONFIG (launch.py does this):
bentoml serve bentoml_service:Peer --host 127.0.0.1 --port PORT
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio.to_thread
import bentoml
import numpy as np
from bentoml.exceptions import InvalidArgument

import pipeline

CONFIG: dict[str, Any] = json.loads(Path(os.environ["SIGHTD_PEER_CONFIG"]).read_text(encoding="utf-8"))
WORKERS = int(CONFIG.get("workers", 2))
MAX_BATCH_SIZE = int(CONFIG.get("max_batch_size", 8))
# BentoML's default: a lower bound makes its dispatcher refuse requests (503) once the machine is busy.
MAX_LATENCY_MS = int(CONFIG.get("max_latency_ms", 60000))
# No access log line per request (diy_server.py logs none either).
LOGGING = {"access": {"enabled": False}}

if not CONFIG.get("batching", False):

    @bentoml.service(workers=WORKERS, logging=LOGGING)
    class Peer:
        def __init__(self) -> None:
            self.model = pipeline.load(CONFIG)

        @bentoml.api
        def predict(self, body: bytes, /) -> dict[str, Any]:
            try:
                return self.model.predict(body)
            except pipeline.BadImageError as exc:
                raise InvalidArgument(str(exc)) from exc

else:

    @bentoml.service(workers=1, logging=LOGGING)
    class Inference:
        def __init__(self) -> None:
            self.model = pipeline.load(CONFIG)

        @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_SIZE, max_latency_ms=MAX_LATENCY_MS)
        def infer(self, tensors: list[np.ndarray]) -> list[list[np.ndarray]]:
            """Each request's tensor [3, H, W] -> its rows of the network's outputs."""
            outputs = self.model.infer(np.stack(tensors))
            return [[output[i] for output in outputs] for i in range(len(tensors))]

    @bentoml.service(workers=WORKERS, logging=LOGGING)
    class Peer:  # type: ignore[no-redef]
        inference = bentoml.depends(Inference)

        def __init__(self) -> None:
            self.model = pipeline.load(CONFIG, session=False)

        @bentoml.api
        async def predict(self, body: bytes, /) -> dict[str, Any]:
            try:
                tensor, context = await anyio.to_thread.run_sync(self.model.preprocess, body)
            except pipeline.BadImageError as exc:
                raise InvalidArgument(str(exc)) from exc
            (outputs,) = await self.inference.to_async.infer([tensor])
            return self.model.postprocess(outputs, context)
