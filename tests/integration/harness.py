"""Running sightd for the service tests: in this process (``running_service``) or as ``sightd serve``
(``ServeProcess``), on loopback, with clients of every sightd.v1 service; and an image server for URL
inputs whose slow path hangs until released."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc

from sightd.config import Settings, load_settings
from sightd.service import SightService, Started
from sightd.store import keys
from sightd.store.database import open_database
from sightd.v1 import (
    inference_pb2_grpc,
    networks_pb2_grpc,
    recognition_pb2_grpc,
    tasks_pb2_grpc,
)


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    base = replace(
        load_settings(environ={}),
        data_dir=data_dir,
        host="127.0.0.1",
        grpc_port=0,
        http_port=0,
        metrics_port=0,
        public_models=False,
        allow_url_host=("127.0.0.1",),
        drain_seconds=5.0,
        url_timeout=10.0,
        log_format="text",
    )
    return replace(base, **overrides)


class Stubs:
    """Clients of every sightd.v1 service on one channel, with a key's metadata."""

    def __init__(self, channel: grpc.aio.Channel, key: str) -> None:
        self.channel = channel
        self.key = key
        self.metadata = [("x-api-key", key)]
        self.networks = networks_pb2_grpc.NetworkServiceStub(channel)
        self.specs = recognition_pb2_grpc.RecognitionSpecServiceStub(channel)
        self.versions = recognition_pb2_grpc.RecognitionVersionServiceStub(channel)
        self.inference = inference_pb2_grpc.InferenceServiceStub(channel)
        self.tasks = tasks_pb2_grpc.TaskServiceStub(channel)


@dataclass
class Running:
    service: SightService
    started: Started
    channel: grpc.aio.Channel
    clients: dict[str, Stubs]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.started.grpc_port}"


async def create_keys(database_url: str, tenants: list[str]) -> dict[str, str]:
    database = await open_database(database_url)
    try:
        found: dict[str, str] = {}
        async with database.write() as connection:
            for tenant in tenants:
                _, found[tenant] = await keys.create_key(connection, tenant=tenant)
        return found
    finally:
        await database.close()


@contextlib.asynccontextmanager
async def running_service(
    data_dir: Path, database_url: str = "", tenants: tuple[str, ...] = ("acme", "globex"), **overrides: Any
) -> AsyncIterator[Running]:
    """A started service with one key per tenant; stopped at the end."""
    settings = settings_for(data_dir, database_url=database_url, **overrides)
    tenant_keys = await create_keys(settings.resolved_database_url, list(tenants))
    service = SightService(settings)
    try:
        started = await service.start()
        options = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{started.grpc_port}", options=options) as channel:
            yield Running(service, started, channel, {t: Stubs(channel, k) for t, k in tenant_keys.items()})
    finally:
        await service.stop()


# --- sightd serve as a process --------------------------------------------------------------------------


class ServeProcess:
    """``sightd serve`` with flags; ``grpc_port`` once it serves (read from its JSON log on stderr)."""

    def __init__(self, data_dir: Path, *flags: str, environ: Mapping[str, str] | None = None) -> None:
        self.log_path = data_dir / f"serve-{time.monotonic_ns()}.log"
        self.out_path = data_dir / f"serve-{time.monotonic_ns()}.out"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGHTD_") or k == "SIGHTD_CACHE_DIR"}
        env.update(environ or {})
        command = [
            sys.executable,
            "-m",
            "sightd.cli",
            "serve",
            "--data-dir",
            str(data_dir),
            "--host",
            "127.0.0.1",
            "--grpc-port",
            "0",
            "--metrics-port",
            "0",
            "--http-port",
            "0",
            "--log-format",
            "json",
            *flags,
        ]
        with self.log_path.open("wb") as log, self.out_path.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=log, env=env)
        self.grpc_port = 0
        self.metrics_port = 0
        self.http_port = 0

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for text in self.log_path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                lines.append(json.loads(text))
        return lines

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    def wait_serving(self, timeout: float = 300) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in self.log_lines():
                if line.get("message") == "sightd is serving":
                    self.grpc_port, self.metrics_port = int(line["grpc_port"]), int(line["metrics_port"])
                    self.http_port = int(line.get("http_port") or 0)
                    return
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"sightd serve exited with {code}:\n{self.log_path.read_text()}")
            time.sleep(0.1)
        raise TimeoutError(f"sightd serve did not start:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def terminate(self, timeout: float = 60) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()


# --- images over HTTP ---------------------------------------------------------------------------------


class ImageServer:
    """Serves files of a folder on 127.0.0.1; ``/slow/<name>`` answers only once ``release()`` is called."""

    def __init__(self, folder: Path) -> None:
        released = self.released = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                if self.path.startswith("/slow/"):
                    released.wait(120)
                path = folder / name
                if not path.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.contextmanager
def image_server(folder: Path) -> Iterator[ImageServer]:
    server = ImageServer(folder)
    try:
        yield server
    finally:
        server.close()
