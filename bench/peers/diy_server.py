"""The do-it-yourself peer: the recognition server a user writes with FastAPI + uvicorn, Pillow, NumPy and
onnxruntime (pipeline.py), one uvicorn worker, one onnxruntime session.

- default: the pipeline (decode, preprocess, inference, post-processing) runs inline in an ``async def``
  endpoint, so requests are served one at a time by the event loop;
- ``--threadpool``: the same endpoint hands the pipeline to the thread pool (Starlette's
  ``run_in_threadpool``, what FastAPI does for a ``def`` endpoint), so several requests run at once (the GIL
  is released by Pillow's decode and resize and by onnxruntime).

``POST /predict`` (body: the encoded image) answers ``{"predictions": [...]}``; a body that is not an image
gets 400. ``GET /healthz`` answers once the model is loaded (it is loaded before the server listens).

Runs in .venv-peers: python diy_server.py --config CONFIG.json --port PORT [--threadpool]
(launch.py writes the config from the zoo and starts it.)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from starlette.concurrency import run_in_threadpool

import pipeline


def create_app(model: pipeline.Model, *, threadpool: bool) -> FastAPI:
    app = FastAPI(title="diy recognition peer")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        body = await request.body()
        try:
            if threadpool:
                return await run_in_threadpool(model.predict, body)
            return model.predict(body)
        except pipeline.BadImageError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="the model's JSON config (launch.py)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--threadpool", action="store_true", help="run the pipeline in the thread pool")
    args = parser.parse_args()
    app = create_app(pipeline.load_file(args.config), threadpool=args.threadpool)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
