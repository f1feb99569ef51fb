"""In-process calls (sightd.grpc.local) against the same calls over a real channel, the reference: every
outcome (the answer, or the code, details and trailing metadata of a failure) must be the same, and the
call must go through the server's interceptors (start gate, authentication, metrics) alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from sightd.app.errors import BadRequestError
from sightd.app.tasks import TaskBoard
from sightd.config import load_settings
from sightd.grpc.local import LocalChannel
from sightd.grpc.metrics import MetricsInterceptor
from sightd.grpc.server import GrpcServer, Service
from sightd.grpc.status import details_of, to_status
from sightd.grpc.tasks import TaskServicer
from sightd.grpc.wrapping import admission
from sightd.store import keys
from sightd.store.database import Database
from sightd.v1 import tasks_pb2, tasks_pb2_grpc

PROBE = "/sightd.test.Probe/Do"
MAX_MESSAGE_BYTES = 64 * 1024


class Probe:
    """A method whose behaviour the request's ``id`` picks; what it saw is kept for the tests."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []
        self.started = asyncio.Event()

    async def do(self, request: tasks_pb2.GetTaskRequest, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        what = request.id
        answer = tasks_pb2.GetTaskResponse(task=tasks_pb2.Task(id=what))
        if what == "echo":
            return answer
        if what == "bytes":  # already serialized, as sightd's recognitions are answered
            return answer.SerializeToString()
        if what == "abort":
            await context.abort_with_status(to_status(BadRequestError.of("inputs[0].image", "not an image")))
        if what == "abort_plain":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not now", (("x-why", "because"),))
        if what == "set_code":
            context.set_code(grpc.StatusCode.NOT_FOUND)
            context.set_details("nothing here")
            return answer
        if what == "raise":
            raise RuntimeError("boom")
        if what == "rpc_error":  # a failed call of its own, let out
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.NOT_FOUND, grpc.aio.Metadata(), grpc.aio.Metadata(), details="elsewhere"
            )
        if what == "remaining":
            remaining = context.time_remaining()
            late = "none" if remaining is None else ("soon" if 0 < remaining <= 30 else f"odd {remaining}")
            return tasks_pb2.GetTaskResponse(task=tasks_pb2.Task(id=late))
        if what == "metadata":
            seen = dict(context.invocation_metadata() or ())
            return tasks_pb2.GetTaskResponse(task=tasks_pb2.Task(id=str(seen.get("x-probe"))))
        if what.startswith("slow"):
            self.started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                self.cancelled.append(what)
                raise
        raise AssertionError(f"no behaviour {what!r}")


def _add_probe(probe: Probe, server: Any) -> None:
    handler = grpc.unary_unary_rpc_method_handler(
        probe.do,
        request_deserializer=tasks_pb2.GetTaskRequest.FromString,
        response_serializer=tasks_pb2.GetTaskResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("sightd.test.Probe", {"Do": handler})]
    )


class ProbeInterceptor(grpc.aio.ServerInterceptor):
    """Raises for calls that ask it to (``x-probe: raise``), before the server's own interceptor."""

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        if ("x-probe", "raise") in tuple(handler_call_details.invocation_metadata or ()):
            raise RuntimeError("interceptor boom")
        return await continuation(handler_call_details)


@dataclass
class Served:
    server: GrpcServer
    board: TaskBoard
    probe: Probe
    registry: CollectorRegistry
    real: grpc.aio.Channel
    local: LocalChannel
    key: str
    tenant: int


@pytest.fixture
async def served(database: Database, tmp_path: Path) -> AsyncIterator[Served]:
    async with database.write() as connection:
        _, key = await keys.create_key(connection, tenant="acme")
    async with database.read() as connection:
        tenant = await keys.authenticate(connection, key)
    assert tenant is not None
    settings = replace(
        load_settings(environ={}),
        data_dir=tmp_path,
        host="127.0.0.1",
        grpc_port=0,
        max_message_bytes=MAX_MESSAGE_BYTES,
    )
    board = TaskBoard(database, ttl=600, poll_interval=30)
    probe = Probe()

    async def authenticate(api_key: str) -> int | None:
        async with database.read() as connection:
            return await keys.authenticate(connection, api_key)

    services = [
        Service(
            "sightd.v1.TaskService", TaskServicer(board), tasks_pb2_grpc.add_TaskServiceServicer_to_server
        ),
        Service("sightd.test.Probe", probe, _add_probe),
    ]
    registry = CollectorRegistry()
    server = GrpcServer(
        settings,
        services,
        authenticate,
        interceptors=[ProbeInterceptor(), MetricsInterceptor(registry)],
        gate=True,
    )
    port = await server.start()
    await server.open()
    options = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
    real = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options)
    local = server.local_channel(grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options))
    try:
        yield Served(server, board, probe, registry, real, local, key, tenant)
    finally:
        await real.close()
        await local.close()
        await server.server.stop(0)


Outcome = tuple[Any, ...]


async def _outcome(
    channel: grpc.aio.Channel,
    method: str,
    request: Any,
    metadata: list[tuple[str, str]],
    timeout: float | None,
) -> Outcome:
    call = channel.unary_unary(
        method,
        request_serializer=type(request).SerializeToString,
        response_deserializer=tasks_pb2.GetTaskResponse.FromString,
    )
    try:
        answer = await call(request, metadata=metadata, timeout=timeout)
    except grpc.aio.AioRpcError as error:
        trailing = sorted(
            (k, v) for k, v in (error.trailing_metadata() or ()) if not k.startswith("grpc-status")
        )
        details = details_of(error)
        return (error.code(), error.details(), details.reason, details.violations, trailing)
    return ("answer", answer.SerializeToString())


def _get(task_id: str) -> tasks_pb2.GetTaskRequest:
    return tasks_pb2.GetTaskRequest(id=task_id)


async def test_every_outcome_is_the_real_channels(served: Served) -> None:
    task = await served.board.create(served.tenant, "recognition")
    key = [("x-api-key", served.key)]
    get_task = "/sightd.v1.TaskService/GetTask"
    cases: list[tuple[str, str, Any, list[tuple[str, str]], float | None]] = [
        ("a task", get_task, _get(str(task.id)), key, 10.0),
        ("no such task", get_task, _get("999999"), key, 10.0),
        ("no key", get_task, _get(str(task.id)), [], 10.0),
        ("an unknown key", get_task, _get(str(task.id)), [("x-api-key", "sd_nope")], None),
        ("a bearer key", get_task, _get(str(task.id)), [("authorization", f"Bearer {served.key}")], None),
        ("an answer", PROBE, _get("echo"), key, 10.0),
        ("a serialized answer", PROBE, _get("bytes"), key, 10.0),
        ("rich error details", PROBE, _get("abort"), key, 10.0),
        ("an abort with trailing metadata", PROBE, _get("abort_plain"), key, 10.0),
        ("a code set, then an answer", PROBE, _get("set_code"), key, 10.0),
        ("an exception", PROBE, _get("raise"), key, 10.0),
        ("a failed call's exception", PROBE, _get("rpc_error"), key, 10.0),
        ("a deadline", PROBE, _get("remaining"), key, 10.0),
        ("no deadline", PROBE, _get("remaining"), key, None),
        ("the metadata", PROBE, _get("metadata"), [*key, ("x-probe", "seen")], None),
        ("an interceptor's exception", PROBE, _get("echo"), [*key, ("x-probe", "raise")], None),
        ("a deadline passing", PROBE, _get("slow"), key, 0.3),
        ("no such method", "/sightd.test.Probe/Nope", _get("echo"), key, 10.0),
        ("a request too large", PROBE, _get("x" * (MAX_MESSAGE_BYTES + 10)), key, 10.0),
    ]
    for name, method, request, metadata, timeout in cases:
        real = await _outcome(served.real, method, request, metadata, timeout)
        local = await _outcome(served.local, method, request, metadata, timeout)
        assert local == real, name
    assert served.probe.cancelled == ["slow", "slow"]  # the deadline cancelled the handler both ways


async def test_the_start_gate_refuses_in_process_calls_too(served: Served) -> None:
    served.server.interceptor.closed = True
    request, key = _get("echo"), [("x-api-key", served.key)]
    real = await _outcome(served.real, PROBE, request, key, 10.0)
    local = await _outcome(served.local, PROBE, request, key, 10.0)
    assert local == real
    assert local[:3] == (grpc.StatusCode.UNAVAILABLE, "the server is starting; retry in a moment", "STARTING")


async def test_in_process_calls_are_counted_by_the_server_metrics(served: Served) -> None:
    def handled(code: str) -> float:
        labels = {"grpc_service": "sightd.v1.TaskService", "grpc_method": "GetTask", "grpc_type": "unary"}
        value = served.registry.get_sample_value("grpc_server_handled_total", {**labels, "grpc_code": code})
        return value or 0.0

    stub = tasks_pb2_grpc.TaskServiceStub(served.local)
    for metadata in ([("x-api-key", served.key)], []):
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetTask(_get("424242"), metadata=metadata)
    assert (handled("NOT_FOUND"), handled("UNAUTHENTICATED")) == (1.0, 1.0)


async def test_a_cancelled_caller_cancels_the_handler(served: Served) -> None:
    call = served.local.unary_unary(PROBE, response_deserializer=tasks_pb2.GetTaskResponse.FromString)
    caller = asyncio.ensure_future(call(_get("slow caller"), metadata=[("x-api-key", served.key)]))
    await asyncio.wait_for(served.probe.started.wait(), 10)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    for _ in range(100):
        if served.probe.cancelled:
            break
        await asyncio.sleep(0.01)
    assert served.probe.cancelled == ["slow caller"]


async def test_the_call_decides_its_admission_in_a_context_of_its_own(served: Served) -> None:
    stub = tasks_pb2_grpc.TaskServiceStub(served.local)
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.GetTask(_get("424242"), metadata=[("x-api-key", served.key)])
    assert admission.get(None) is None


async def test_a_closed_channel_refuses_calls(served: Served) -> None:
    await served.local.close()
    outcome = await _outcome(served.local, PROBE, _get("echo"), [("x-api-key", served.key)], 10.0)
    assert outcome[:2] == (grpc.StatusCode.UNAVAILABLE, "the in-process channel is closed")
