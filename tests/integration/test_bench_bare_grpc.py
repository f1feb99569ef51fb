"""bench/bare_grpc.py on its three transports: grpc.aio, and gRPC C++ through bench/native/grpc_bridge.cc
with the handler on the event loop or on the bridge's threads (the serving benchmark's grpc_bare,
grpc_bare_native and grpc_bare_native_threads). The native transports must answer what the aio one
answers, and what the real model says of a real image (dog.jpg: malamute first); refuse the same bad
requests with the same status; and keep serving through many concurrent calls and calls their clients give
up on."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from sightd.v1 import common_pb2, inference_pb2
from sightd.zoo import installed

ROOT = Path(__file__).resolve().parents[2]
MODEL = "imagenet-mobilenet-v2"
RECOGNIZE = "/sightd.v1.InferenceService/Recognize"
NATIVE = ("native", "native-threads")
TRANSPORTS = ("aio", *NATIVE)


def start(transport: str) -> tuple[subprocess.Popen[bytes], str]:
    """bench/bare_grpc.py on ``transport``, serving: its process and address."""
    command = [sys.executable, str(ROOT / "bench" / "bare_grpc.py"), MODEL, "--transport", transport]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    if not line.startswith("listening on "):
        process.kill()
        _, error = process.communicate(timeout=30)
        pytest.fail(f"bench/bare_grpc.py --transport {transport} did not start: {error.decode()[-2000:]}")
    return process, line.split()[-1]


@pytest.fixture(scope="module")
def servers(zoo: installed.Zoo) -> Iterator[dict[str, str]]:
    """Every transport's server, by transport: their addresses."""
    processes: dict[str, subprocess.Popen[bytes]] = {}
    addresses: dict[str, str] = {}
    try:
        for transport in TRANSPORTS:
            processes[transport], addresses[transport] = start(transport)
        yield addresses
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for transport, process in processes.items():  # stopped by SIGTERM, never by a crash of its own
            assert process.returncode == -15, (transport, process.returncode)


def request(data: bytes, max_predictions: int | None = 5) -> bytes:
    message = inference_pb2.RecognizeRequest(
        spec_id=MODEL, inputs=[common_pb2.Input(image=common_pb2.ImageInput(data=data))]
    )
    if max_predictions is not None:
        message.max_predictions = max_predictions
    return message.SerializeToString()


def call(address: str, payload: bytes, method: str = RECOGNIZE, timeout: float = 60) -> bytes:
    with grpc.insecure_channel(address) as channel:
        unary = channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        answer: bytes = unary(payload, timeout=timeout)
        return answer


def refusal(address: str, payload: bytes, method: str = RECOGNIZE) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as raised:
        call(address, payload, method)
    error = raised.value
    return error.code(), error.details()  # type: ignore[attr-defined]


def test_the_transports_answer_the_same(servers: dict[str, str], darknet_data: Path) -> None:
    dog = request((darknet_data / "dog.jpg").read_bytes())
    answers = {t: inference_pb2.RecognizeResponse.FromString(call(a, dog)) for t, a in servers.items()}
    for transport in NATIVE:
        assert answers[transport] == answers["aio"], transport
    (output,) = answers["aio"].result.outputs
    predicted = output.labels.predicted
    assert 2 <= len(predicted) <= 5  # those over the model's threshold, 5 at most
    assert predicted[0].label_name == "malamute"
    assert all(p.score >= p.threshold for p in predicted)
    assert [p.score for p in predicted] == sorted((p.score for p in predicted), reverse=True)


def test_the_transports_refuse_the_same(servers: dict[str, str]) -> None:
    cases = {
        "no input": inference_pb2.RecognizeRequest(spec_id=MODEL).SerializeToString(),
        "not an image": request(b"this is not an image"),
    }
    for name, payload in cases.items():
        refused = {t: refusal(a, payload) for t, a in servers.items()}
        assert refused["aio"][0] == grpc.StatusCode.INVALID_ARGUMENT, name
        assert refused["aio"][1], name
        for transport in NATIVE:
            assert refused[transport] == refused["aio"], (name, transport)
    # A method neither serves, and a request that is not a RecognizeRequest: refused, never answered.
    for transport, address in servers.items():
        assert refusal(address, b"", "/sightd.v1.InferenceService/Infer")[0] == grpc.StatusCode.UNIMPLEMENTED
        code, _ = refusal(address, b"\xff\xff\xff")
        assert code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), transport


@pytest.mark.parametrize("transport", NATIVE)
def test_native_transport_under_concurrent_and_abandoned_calls(
    servers: dict[str, str], darknet_data: Path, transport: str
) -> None:
    dog = request((darknet_data / "dog.jpg").read_bytes(), max_predictions=1)
    address = servers[transport]

    async def load() -> tuple[list[bytes], int]:
        async with grpc.aio.insecure_channel(address) as channel:
            unary = channel.unary_unary(RECOGNIZE)
            # Calls whose clients give up long before an answer can come, among 48 that wait for theirs.
            abandoned = [unary(dog, timeout=0.001) for _ in range(16)]
            answered = [unary(dog, timeout=120) for _ in range(48)]
            outcomes = await asyncio.gather(*abandoned, return_exceptions=True)
            expired = sum(
                isinstance(o, grpc.aio.AioRpcError) and o.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                for o in outcomes
            )
            return list(await asyncio.gather(*answered)), expired

    answers, expired = asyncio.run(load())
    assert expired >= 1  # at least one gave up before its answer (most do)
    assert len(answers) == 48
    for answer in answers:
        (output,) = inference_pb2.RecognizeResponse.FromString(answer).result.outputs
        assert [p.label_name for p in output.labels.predicted] == ["malamute"]
    # ... and the server goes on answering.
    (output,) = inference_pb2.RecognizeResponse.FromString(call(address, dog)).result.outputs
    assert output.labels.predicted[0].label_name == "malamute"


@pytest.mark.parametrize("transport", NATIVE)
def test_native_transport_stops_with_calls_in_flight(
    zoo: installed.Zoo, darknet_data: Path, transport: str
) -> None:
    """Interrupted while 24 calls are in flight, the server answers or refuses each of them (none is left
    waiting) and exits."""
    process, address = start(transport)
    try:
        dog = request((darknet_data / "dog.jpg").read_bytes(), max_predictions=1)

        async def interrupted() -> list[grpc.StatusCode]:
            async with grpc.aio.insecure_channel(address) as channel:
                unary = channel.unary_unary(RECOGNIZE)
                calls = [unary(dog, timeout=60) for _ in range(24)]
                await asyncio.sleep(0.05)
                process.send_signal(signal.SIGINT)
                outcomes = await asyncio.gather(*calls, return_exceptions=True)
                return [
                    o.code() if isinstance(o, grpc.aio.AioRpcError) else grpc.StatusCode.OK for o in outcomes
                ]

        codes = asyncio.run(interrupted())
        assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}, (
            codes
        )
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
