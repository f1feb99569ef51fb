"""A bounded closed-loop load generator for the serving benchmarks (bench/serving.py).

N clients each send one request, wait for its answer, and send the next (closed loop), until the budget is
spent: a number of requests, a duration, or both (whichever ends first; a duration still lets every client
finish at least two requests, so that slow cells measure a steady state). Every request's latency is
recorded; the process's own CPU time over the load (``time.process_time``: every thread, the gRPC core's
included) is reported too, per request, since the client shares the machine's cores with the server.

The client side is kept as cheap as possible: gRPC requests are serialised once and sent as bytes through
generic calls with identity serialisers (``channel.unary_unary(path)`` with no serialiser passes bytes both
ways), answers are parsed only as far as the caller's check needs (a few wire bytes; a full parse on a
sample), and HTTP goes through a minimal keep-alive HTTP/1.1 client on asyncio streams (one connection per
client). This module imports no sightd module, so that it measures nothing but the transport.

Cheaper still, ``native_loop`` runs the same closed loop in the native load generator (bench/native/
loadgen.cc, built into build/bench/loadgen by ``make bench-loadgen``): unary gRPC calls, one bidirectional
gRPC stream, or keep-alive HTTP/1.1 posts, each answer checked for the expected bytes and a sample written
out for the caller's full parse. On the cores it shares with the server under test, a Python client took
0.25 to 0.45 ms of CPU per request in the serving runs, the native one 0.1 to 0.25 ms.

Not a benchmark on its own: ``python bench/loadgen.py`` prints what it is and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "NATIVE_LOADGEN",
    "Budget",
    "HttpConnection",
    "Load",
    "closed_loop",
    "encode_bytes_field",
    "encode_varint",
    "http_get",
    "http_request",
    "native_loop",
    "official_inference_post",
    "official_task_wait",
    "percentile",
    "read_bytes_field",
    "stream_window",
    "threaded_closed_loop",
]


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (``fraction`` 0.5 is the median, 0.99 the 99th)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass
class Load:
    """What one closed-loop run measured."""

    clients: int
    elapsed: float  # seconds from the first request sent to the last answer received
    latencies: list[float] = field(default_factory=list)  # seconds, one per answered request
    client_cpu: float = 0.0  # seconds of this process's CPU time (all threads) over the run

    @property
    def completed(self) -> int:
        return len(self.latencies)

    def summary(self) -> dict[str, float]:
        return {
            "requests": self.completed,
            "seconds": self.elapsed,
            "images_per_second": self.completed / self.elapsed,
            "p50_ms": 1000 * percentile(self.latencies, 0.5),
            "p99_ms": 1000 * percentile(self.latencies, 0.99),
            "client_cpu_ms_per_request": 1000 * self.client_cpu / self.completed,
        }


class Budget:
    """How many requests may still start: at most ``requests`` (None: no limit), none after ``seconds``
    (None: no limit) once every client started at least ``minimum`` requests in all. Thread-safe."""

    def __init__(self, requests: int | None, seconds: float | None, minimum: int) -> None:
        if requests is None and seconds is None:
            raise ValueError("a load needs a request count, a duration, or both")
        self.requests = requests
        self.seconds = seconds
        self.minimum = minimum
        self.started = 0
        self.deadline = 0.0
        self._lock = threading.Lock()

    def start(self) -> None:
        self.deadline = time.perf_counter() + self.seconds if self.seconds is not None else 0.0

    def take(self) -> int | None:
        """The index of the next request, or None when the budget is spent."""
        with self._lock:
            if self.requests is not None and self.started >= self.requests:
                return None
            if (
                self.seconds is not None
                and self.started >= self.minimum
                and time.perf_counter() >= self.deadline
            ):
                return None
            index = self.started
            self.started += 1
            return index


async def closed_loop(
    call: Callable[[int, int], Awaitable[None]],
    clients: int,
    *,
    requests: int | None = None,
    seconds: float | None = None,
) -> Load:
    """``clients`` asyncio tasks, each awaiting ``call(client, index)`` back to back until the budget is
    spent. ``call`` raises when an answer is wrong (the load stops with it)."""
    budget = Budget(requests, seconds, 2 * clients)
    load = Load(clients, 0.0)

    async def client(number: int) -> None:
        while (index := budget.take()) is not None:
            started = time.perf_counter()
            await call(number, index)
            load.latencies.append(time.perf_counter() - started)

    cpu = time.process_time()
    started = time.perf_counter()
    budget.start()
    await asyncio.gather(*(client(number) for number in range(clients)))
    load.elapsed = time.perf_counter() - started
    load.client_cpu = time.process_time() - cpu
    return load


def threaded_closed_loop(
    call: Callable[[int, int], None],
    clients: int,
    *,
    requests: int | None = None,
    seconds: float | None = None,
) -> Load:
    """As ``closed_loop`` with ``clients`` OS threads calling a blocking ``call(client, index)`` (code that
    releases the GIL, such as sightd's core). The first error of a thread is raised once all have stopped."""
    budget = Budget(requests, seconds, 2 * clients)
    load = Load(clients, 0.0)
    errors: list[BaseException] = []

    def client(number: int) -> None:
        try:
            while not errors and (index := budget.take()) is not None:
                started = time.perf_counter()
                call(number, index)
                load.latencies.append(time.perf_counter() - started)  # list.append is atomic
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    cpu = time.process_time()
    started = time.perf_counter()
    budget.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load.elapsed = time.perf_counter() - started
    load.client_cpu = time.process_time() - cpu
    if errors:
        raise errors[0]
    return load


async def stream_window(
    channel: Any,
    method: str,
    request: Callable[[int], bytes],
    answer: Callable[[bytes], int],
    clients: int,
    *,
    requests: int | None = None,
    seconds: float | None = None,
    metadata: tuple[tuple[str, str], ...] = (),
) -> Load:
    """One bidirectional gRPC stream (``method``, bytes both ways) with ``clients`` requests in flight:
    ``request(index)`` gives the serialised request of that index, ``answer(message)`` checks an answer and
    returns the index it answers (raising when it is wrong). A request leaves as soon as an answer frees a
    place; the stream's request side closes when the budget is spent."""
    budget = Budget(requests, seconds, 2 * clients)
    load = Load(clients, 0.0)
    sent: dict[int, float] = {}
    room = asyncio.Semaphore(clients)

    async def outgoing() -> AsyncIterator[bytes]:
        while True:
            await room.acquire()
            index = budget.take()
            if index is None:
                return
            sent[index] = time.perf_counter()
            yield request(index)

    call = channel.stream_stream(method, request_serializer=None, response_deserializer=None)
    cpu = time.process_time()
    started = time.perf_counter()
    budget.start()
    stream = call(outgoing(), metadata=metadata)
    async for message in stream:
        index = answer(message)
        load.latencies.append(time.perf_counter() - sent.pop(index))
        room.release()
    load.elapsed = time.perf_counter() - started
    load.client_cpu = time.process_time() - cpu
    if sent:
        raise RuntimeError(f"the stream ended with {len(sent)} requests unanswered")
    return load


# --- the native load generator ---------------------------------------------------------------------------

NATIVE_LOADGEN = Path(__file__).resolve().parent.parent / "build" / "bench" / "loadgen"


async def native_loop(
    mode: str,
    target: str,
    request: bytes,
    clients: int,
    *,
    expect: bytes,
    method: str = "",
    metadata: Sequence[tuple[str, str]] = (),
    requests: int | None = None,
    seconds: float | None = None,
    sample_every: int = 0,
) -> tuple[Load, dict[int, bytes]]:
    """``closed_loop`` (mode ``grpc-unary`` or ``http``) or ``stream_window`` (``grpc-stream``) run by the
    native load generator against ``target`` (HOST:PORT): ``request`` is the gRPC message (for the stream,
    the inner request each message carries with its index) or the whole HTTP request. Every answer must be
    a success holding ``expect``; the answers of index 0 and every ``sample_every``'th come back, by index,
    for a full parse. Raises RuntimeError with the generator's reason when it stops on a bad answer."""
    if requests is None and seconds is None:
        raise ValueError("a load needs a request count, a duration, or both")
    if not NATIVE_LOADGEN.is_file():
        raise RuntimeError(f"{NATIVE_LOADGEN} is not built (make bench-loadgen)")
    with tempfile.TemporaryDirectory(prefix="sightd-loadgen-") as name:
        folder = Path(name)
        (folder / "request").write_bytes(request)
        (folder / "answers").mkdir()
        arguments = [mode, "--target", target, "--request", str(folder / "request")]
        arguments += ["--clients", str(clients), "--expect", expect.decode()]
        arguments += ["--sample-dir", str(folder / "answers")]
        arguments += ["--sample-every", str(sample_every)]
        if method:
            arguments += ["--method", method]
        for key, value in metadata:
            arguments += ["--metadata", f"{key}={value}"]
        if requests is not None:
            arguments += ["--requests", str(requests)]
        if seconds is not None:
            arguments += ["--seconds", str(seconds)]
        process = await asyncio.create_subprocess_exec(
            str(NATIVE_LOADGEN),
            *arguments,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,
        )
        out, err = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"the native load generator failed: {err.decode(errors='replace').strip()}")
        report = json.loads(out)
        samples = {
            int(path.stem.split("-", 1)[1]): path.read_bytes() for path in (folder / "answers").iterdir()
        }
    load = Load(clients, report["elapsed"], report["latencies"], report["cpu_seconds"])
    return load, samples


# --- protobuf wire format: just enough to pre-serialise requests and read one field of an answer ----------


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_bytes_field(number: int, data: bytes) -> bytes:
    """A length-delimited field (string, bytes or embedded message) ready to concatenate into a message."""
    return encode_varint(number << 3 | 2) + encode_varint(len(data)) + data


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def read_bytes_field(data: bytes, number: int) -> bytes | None:
    """The first length-delimited field ``number`` at the top level of a serialised message (None if
    absent), skipping the other fields without decoding them."""
    position = 0
    while position < len(data):
        key, position = _read_varint(data, position)
        wire = key & 7
        if wire == 0:
            _, position = _read_varint(data, position)
        elif wire == 1:
            position += 8
        elif wire == 5:
            position += 4
        elif wire == 2:
            length, position = _read_varint(data, position)
            if key >> 3 == number:
                return data[position : position + length]
            position += length
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return None


# --- HTTP/1.1: a keep-alive client on asyncio streams ------------------------------------------------------


def http_request(
    method: str, path: str, host: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """The bytes of one HTTP/1.1 request (keep-alive), built once and sent as many times as needed."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method in {"POST", "PUT", "PATCH"}:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class HttpConnection:
    """One keep-alive connection: ``send(request)`` writes pre-built request bytes and answers the status
    and the body (Content-Length or chunked). Reconnects when the server closed the connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        if self._writer is None or self._writer.is_closing():
            await self.connect()
        assert self._reader is not None
        assert self._writer is not None
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, _, header_block = head.partition(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length = -1
        chunked = close = False
        for line in header_block.split(b"\r\n"):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        if chunked:
            parts = []
            while True:
                size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self._trailers()
                    break
                parts.append(await self._reader.readexactly(size))
                await self._reader.readexactly(2)
            body = b"".join(parts)
        elif length >= 0:
            body = await self._reader.readexactly(length)
        else:
            body = await self._reader.read()
            close = True
        if close:
            await self.close()
        return status, body

    async def _trailers(self) -> None:
        assert self._reader is not None
        while (await self._reader.readuntil(b"\r\n")) != b"\r\n":
            pass

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._writer = self._reader = None


async def http_get(host: str, port: int, path: str) -> tuple[int, bytes]:
    """One GET on a connection of its own (metrics scrapes, health checks)."""
    connection = HttpConnection(host, port)
    try:
        return await connection.send(http_request("GET", path, f"{host}:{port}"))
    finally:
        await connection.close()


# --- the official Deepomatic client's REST flow (deepomatic-api 1.0.0) -------------------------------------


def official_inference_post(
    host: str, path: str, key: str, image: tuple[str, bytes], *, max_predictions: int
) -> bytes:
    """The official client's inference POST with a file (``image``: its name and bytes), to ``path`` on
    ``host``: a multipart form whose file part carries the image at the flattened key
    ``inputs[0]image.source``, the other fields as text."""
    filename, data = image
    boundary = "sightdbench7f3a9c1e5b"
    parts = []
    for name, value in (
        ("inputs[0]image.crop_uniform_background", "False"),
        ("show_discarded", "False"),
        ("max_predictions", str(max_predictions)),
    ):
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(f"{head}{value}\r\n".encode())
    parts.append(
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="inputs[0]image.source"; '
            f'filename="{filename}"\r\n\r\n'
        ).encode()
        + data
        + b"\r\n"
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    headers = {"X-API-KEY": key, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    return http_request("POST", path, host, body, headers)


async def official_task_wait(
    connection: HttpConnection, host: str, key: str, task_id: str, generator: random.Random
) -> tuple[int, dict[str, Any]]:
    """``GET /v0.7/tasks/{task_id}/`` at once and again on the official client's schedule until the task is
    no longer pending: its ``Task.wait`` (tenacity) waits 50 ms, then 100 ms plus a random exponential
    back-off (``wait_random_exponential(multiplier=0.05, max=1.0)``), by attempt number. Answers how many
    GETs it took and the task's document; a GET answered other than 200 raises AssertionError."""
    get = http_request("GET", f"/v0.7/tasks/{task_id}/", host, headers={"X-API-KEY": key})
    attempt = 0
    while True:
        status, body = await connection.send(get)
        if status != 200:
            raise AssertionError(f"GET task answered {status}: {body[:300]!r}")
        task: dict[str, Any] = json.loads(body)
        if task["status"] != "pending":
            return attempt + 1, task
        attempt += 1
        delay = 0.05
        if attempt > 1:
            delay = 0.1 + generator.uniform(0, min(1.0, 0.05 * 2 ** (attempt - 1)))
        await asyncio.sleep(delay)


if __name__ == "__main__":
    print(__doc__.splitlines()[0] if __doc__ else "bench/loadgen.py")
    print("a library of bench/serving.py, not a benchmark of its own: run bench/serving.py")
