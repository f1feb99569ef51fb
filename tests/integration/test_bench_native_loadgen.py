"""The serving benchmark's native load generator (bench/native/loadgen.cc, through loadgen.native_loop)
against small servers written here: what it sends, the budget it keeps, the answers it samples, and that it
stops with the reason on a failed call, a wrong answer or a broken stream, never counting them."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest

from integration.canned_http import CannedHttp

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
UNARY = "/bench.Echo/Unary"
STREAM = "/bench.Echo/Stream"


@pytest.fixture(scope="module")
def loadgen() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH))
    try:
        import loadgen

        if not loadgen.NATIVE_LOADGEN.is_file():
            pytest.fail(
                f"{loadgen.NATIVE_LOADGEN} is not built: make bench-loadgen (a prerequisite of pytest)"
            )
        yield loadgen
    finally:
        sys.path.remove(str(BENCH))


def field(number: int, data: bytes) -> bytes:
    assert len(data) < 128
    assert number < 16
    return bytes([number << 3 | 2, len(data)]) + data


class Echo:
    """bench.Echo: Unary answers b"ok:" + the request (or fails the calls whose request starts with b"fail"),
    Stream answers each message's field 1 (its index) as field 1 with b"ok" as field 2 (or ends the stream
    after ``stream_answers`` answers). Records the metadata and requests it got."""

    def __init__(self, stream_answers: int | None = None) -> None:
        self.stream_answers = stream_answers
        self.requests: list[bytes] = []
        self.keys: list[str | bytes] = []

    async def unary(self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        self.requests.append(request)
        self.keys += [value for key, value in context.invocation_metadata() or () if key == "x-api-key"]
        if request.startswith(b"fail"):
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many")
        return b"ok:" + request

    async def stream(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> AsyncIterator[bytes]:
        answered = 0
        async for message in requests:
            self.requests.append(message)
            if self.stream_answers is not None and answered == self.stream_answers:
                return
            assert message[0] == 0x0A  # field 1, length-delimited: the index
            index = message[2 : 2 + message[1]]
            answered += 1
            yield field(1, index) + field(2, b"ok")


async def serve_echo(echo: Echo) -> tuple[grpc.aio.Server, int]:
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(echo.unary),
        "Stream": grpc.stream_stream_rpc_method_handler(echo.stream),
    }
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Echo", handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


def grpc_load(
    loadgen: ModuleType, echo: Echo, mode: str, request: bytes, clients: int, **options: Any
) -> Any:
    """``native_loop`` in ``mode`` against ``echo``, on the method of that mode."""

    async def main() -> Any:
        server, port = await serve_echo(echo)
        method = UNARY if mode == "grpc-unary" else STREAM
        try:
            return await loadgen.native_loop(
                mode, f"127.0.0.1:{port}", request, clients, method=method, **options
            )
        finally:
            await server.stop(None)

    return asyncio.run(main())


def test_unary_calls_keep_the_budget_and_sample_the_answers(loadgen: ModuleType) -> None:
    echo = Echo()
    load, samples = grpc_load(
        loadgen, echo, "grpc-unary", b"image", 3, expect=b"ok:",
        metadata=(("x-api-key", "secret"),), requests=10, sample_every=4,
    )  # fmt: skip
    assert load.completed == 10
    assert len(load.latencies) == 10
    assert all(0 < latency <= load.elapsed for latency in load.latencies)
    assert load.client_cpu > 0
    assert echo.requests == [b"image"] * 10
    assert echo.keys == ["secret"] * 10
    assert samples == {0: b"ok:image", 4: b"ok:image", 8: b"ok:image"}


def test_a_duration_still_gives_every_client_two_requests(loadgen: ModuleType) -> None:
    load, _ = grpc_load(loadgen, Echo(), "grpc-unary", b"image", 4, expect=b"ok", seconds=0.0)
    assert load.completed == 8


def test_a_failed_call_stops_the_load_with_its_status(loadgen: ModuleType) -> None:
    with pytest.raises(RuntimeError, match=r"call \d failed: code 8, too many"):
        grpc_load(loadgen, Echo(), "grpc-unary", b"fail", 2, expect=b"ok", requests=4)


def test_an_answer_without_the_expected_bytes_stops_the_load(loadgen: ModuleType) -> None:
    with pytest.raises(RuntimeError, match=r'answer 0 lacks "malamute": ok:image'):
        grpc_load(loadgen, Echo(), "grpc-unary", b"image", 1, expect=b"malamute", requests=3)


def test_a_stream_keeps_that_many_requests_in_flight_and_matches_the_answers(loadgen: ModuleType) -> None:
    echo = Echo()
    load, samples = grpc_load(
        loadgen, echo, "grpc-stream", b"image", 4, expect=b"ok", requests=25, sample_every=10
    )
    assert load.completed == 25
    # Each message: the index as field 1, then the request as field 2.
    assert echo.requests == [field(1, str(i).encode()) + field(2, b"image") for i in range(25)]
    assert samples == {i: field(1, str(i).encode()) + field(2, b"ok") for i in (0, 10, 20)}


def test_a_stream_ended_before_every_answer_stops_the_load(loadgen: ModuleType) -> None:
    with pytest.raises(RuntimeError, match="2 requests were left unanswered"):
        grpc_load(loadgen, Echo(stream_answers=3), "grpc-stream", b"image", 2, expect=b"ok", requests=10)


def run_http(loadgen: ModuleType, answers: list[bytes], clients: int, requests: int) -> Any:
    """The native load generator's posts against a CannedHttp: its result, the bodies the server got and
    the connections it saw."""

    async def main() -> Any:
        async with CannedHttp(answers) as server:
            request = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nimage"
            result = await loadgen.native_loop(
                "http", f"127.0.0.1:{server.port}", request, clients, expect=b"dog", requests=requests,
                sample_every=1,
            )  # fmt: skip
        return result, server.bodies, server.connections

    return asyncio.run(main())


def test_http_posts_read_answers_with_a_length_or_chunks(loadgen: ModuleType) -> None:
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\na dog one",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\na do\r\n5\r\ng two\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\na dog three",
    ]
    (load, samples), bodies, connections = run_http(loadgen, answers, clients=1, requests=3)
    assert load.completed == 3
    assert bodies == [b"image"] * 3
    assert samples == {0: b"a dog one", 1: b"a dog two", 2: b"a dog three"}
    assert connections == 1  # kept alive


def test_a_connection_closed_after_an_answer_is_opened_again(loadgen: ModuleType) -> None:
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\na dog one",
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\na dog two",
    ]
    (load, samples), bodies, connections = run_http(loadgen, answers, clients=1, requests=2)
    assert load.completed == 2
    assert bodies == [b"image"] * 2
    assert samples == {0: b"a dog one", 1: b"a dog two"}
    assert connections == 2


def test_an_http_error_stops_the_load_with_its_status(loadgen: ModuleType) -> None:
    answers = [b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"]
    with pytest.raises(RuntimeError, match="request 0 answered 503: busy"):
        run_http(loadgen, answers, clients=1, requests=1)


def test_a_connection_closed_before_its_answer_stops_the_load(loadgen: ModuleType) -> None:
    answers = [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\na dog"]  # then it closes, and closes again
    with pytest.raises(RuntimeError, match="the server closed a connection before answering request 1"):
        run_http(loadgen, answers, clients=1, requests=2)
