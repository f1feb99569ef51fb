"""The REST gateway's tests: a live service (gRPC + gateway, public models) on a thread of its own, so that
synchronous HTTP clients (http.client, curl, the official client in its own venv) can call it; a plain
HTTP client that never follows redirects; multipart bodies encoded by hand; the test clients' venvs."""

from __future__ import annotations

import asyncio
import http.client
import json
import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from integration.harness import Running, running_service

REPO = Path(__file__).resolve().parents[2]
CLIENT_VENVS = REPO / ".deps" / "rest-clients"


def client_python(name: str) -> Path:
    """The python of a test client's venv (``make rest-clients`` makes them)."""
    python = CLIENT_VENVS / name / "bin" / "python"
    if not (CLIENT_VENVS / name / ".installed").exists():
        pytest.fail(f"{python} is missing: run `make rest-clients` (make test does)")
    return python


class LiveService:
    """``running_service`` with the public models, served from a thread's event loop until ``stop``."""

    def __init__(self, data_dir: Path, **overrides: Any) -> None:
        self.data_dir = data_dir
        self.overrides = {"public_models": True, **overrides}
        self.ready = threading.Event()
        self.failure: BaseException | None = None
        self.running: Running | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, name="live-service", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:
            self.failure = error
            self.ready.set()

    async def _main(self) -> None:
        async with running_service(self.data_dir, **self.overrides) as running:
            self.running = running
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self.ready.set()
            await self._stop.wait()

    def start(self) -> LiveService:
        self.thread.start()
        self.ready.wait(300)
        if self.failure is not None or self.running is None:
            raise RuntimeError(f"the service did not start: {self.failure!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(120)

    @property
    def http_port(self) -> int:
        assert self.running is not None
        assert self.running.started.http_port is not None
        return self.running.started.http_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def key(self, tenant: str = "acme") -> str:
        assert self.running is not None
        return self.running.clients[tenant].key


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def call(
    port: int,
    method: str,
    path: str,
    *,
    key: str | None = None,
    document: Any = None,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """One HTTP request; redirects are answered as they are, never followed."""
    sent = dict(headers or {})
    if key is not None:
        sent["X-API-KEY"] = key
    if document is not None:
        body = json.dumps(document).encode()
        sent.setdefault("Content-Type", "application/json")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


@dataclass
class Part:
    """A multipart part: a field (text) or a file (with a file name and bytes)."""

    name: str
    value: bytes | str
    filename: str | None = None
    content_type: str | None = None


def multipart(parts: Sequence[Part]) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body, encoded as RFC 7578 says (independently of the gateway's parser)."""
    boundary = secrets.token_hex(16)
    chunks: list[bytes] = []
    for part in parts:
        disposition = f'form-data; name="{part.name}"'
        if part.filename is not None:
            disposition += f'; filename="{part.filename}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if part.content_type is not None:
            head += f"Content-Type: {part.content_type}\r\n"
        value = part.value.encode() if isinstance(part.value, str) else part.value
        chunks += [head.encode(), b"\r\n", value, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def flatten(document: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """The official client's flattening of multipart fields (``dump_json_for_multipart``): ``a.b``, ``a[0]b``,
    values as Python's ``str()``; None and empty containers disappear."""
    if isinstance(document, dict):
        for key, value in document.items():
            name = f"{prefix}{key}" if not prefix or prefix.endswith("]") else f"{prefix}.{key}"
            yield from flatten(value, name)
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from flatten(value, f"{prefix}[{index}]")
    elif document is not None:
        yield prefix, str(document)
