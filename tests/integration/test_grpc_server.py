"""The gRPC server over real loopback connections: auth, health, reflection, tasks, errors, limits, drain."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import CollectorRegistry

from sightd.app.tasks import TaskBoard
from sightd.config import load_settings
from sightd.grpc.metrics import MetricsInterceptor, MetricsServer
from sightd.grpc.server import GrpcServer, Service
from sightd.grpc.status import details_of
from sightd.grpc.tasks import TaskServicer
from sightd.store import keys
from sightd.store.database import Database
from sightd.v1 import tasks_pb2, tasks_pb2_grpc

RESULT = {
    "outputs": [
        {
            "labels": {
                "predicted": [
                    {
                        "label_id": 16,
                        "label_name": "dog",
                        "score": 0.75,
                        "threshold": 0.5,
                        "roi": {
                            "region_id": 1,
                            "bbox": {"xmin": 0.25, "ymin": 0.5, "xmax": 0.75, "ymax": 1.0},
                        },
                    }
                ],
                "discarded": [],
            }
        }
    ]
}


class Running:
    def __init__(
        self, server: GrpcServer, board: TaskBoard, channel: grpc.aio.Channel, key_a: str, key_b: str
    ):
        self.server, self.board, self.channel = server, board, channel
        self.key_a, self.key_b = key_a, key_b
        self.tasks = tasks_pb2_grpc.TaskServiceStub(channel)

    def auth(self, key: str) -> list[tuple[str, str]]:
        return [("x-api-key", key)]


async def _start(database: Database, tmp_path: Path, **overrides: object) -> tuple[GrpcServer, TaskBoard]:
    settings = replace(
        load_settings(environ={}),
        data_dir=tmp_path,
        host="127.0.0.1",
        grpc_port=0,
        drain_seconds=5.0,
        **overrides,
    )
    board = TaskBoard(database, ttl=600, poll_interval=30)

    async def authenticate(key: str) -> int | None:
        async with database.read() as connection:
            return await keys.authenticate(connection, key)

    service = Service(
        "sightd.v1.TaskService", TaskServicer(board), tasks_pb2_grpc.add_TaskServiceServicer_to_server
    )
    server = GrpcServer(settings, [service], authenticate)
    await server.start()
    return server, board


@pytest.fixture
async def running(database: Database, tmp_path: Path) -> AsyncIterator[Running]:
    async with database.write() as connection:
        _, key_a = await keys.create_key(connection, tenant="acme")
        _, key_b = await keys.create_key(connection, tenant="globex")
    server, board = await _start(database, tmp_path)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield Running(server, board, channel, key_a, key_b)
    finally:
        await channel.close()
        await server.server.stop(0)


async def _tenant_of(running: Running, key: str) -> int:
    async with running.board.database.read() as connection:
        tenant = await keys.authenticate(connection, key)
    assert tenant is not None
    return tenant


async def test_calls_without_a_valid_key_are_unauthenticated_with_a_reason(running: Running) -> None:
    cases = [
        ([], "API_KEY_MISSING"),
        ([("x-api-key", "sd_wrong")], "API_KEY_INVALID"),
        ([("authorization", "Bearer nope-nope-nope-nope")], "API_KEY_INVALID"),
    ]
    for metadata, reason in cases:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await running.tasks.GetTask(tasks_pb2.GetTaskRequest(id="1"), metadata=metadata)
        details = details_of(failed.value)
        assert (details.code, details.reason, details.domain) == (
            grpc.StatusCode.UNAUTHENTICATED,
            reason,
            "sightd",
        )


async def test_bearer_and_x_api_key_both_authenticate(running: Running) -> None:
    tenant = await _tenant_of(running, running.key_a)
    task = await running.board.create(tenant, "recognition")
    for metadata in (running.auth(running.key_a), [("authorization", f"Bearer {running.key_a}")]):
        answer = await running.tasks.GetTask(tasks_pb2.GetTaskRequest(id=str(task.id)), metadata=metadata)
        assert answer.task.status == tasks_pb2.TASK_STATUS_PENDING


async def test_health_liveness_and_per_service_readiness_without_a_key(running: Running) -> None:
    health = health_pb2_grpc.HealthStub(running.channel)
    assert (
        await health.Check(health_pb2.HealthCheckRequest(service=""))
    ).status == health_pb2.HealthCheckResponse.SERVING
    request = health_pb2.HealthCheckRequest(service="sightd.v1.TaskService")
    assert (await health.Check(request)).status == health_pb2.HealthCheckResponse.NOT_SERVING
    await running.server.set_ready("sightd.v1.TaskService")
    assert (await health.Check(request)).status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await health.Check(health_pb2.HealthCheckRequest(service="sightd.v1.Nothing"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_reflection_lists_services_and_serves_the_contract(running: Running) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(running.channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="sightd.v1.TaskService"),
    ]
    answers = [answer async for answer in stub.ServerReflectionInfo(iter(requests))]
    names = {service.name for service in answers[0].list_services_response.service}
    assert {
        "sightd.v1.TaskService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in answers[1].file_descriptor_response.file_descriptor_proto
    ]
    tasks_file = next(f for f in files if f.name == "sightd/v1/tasks.proto")
    assert [m.name for m in tasks_file.service[0].method] == ["GetTask", "ListTasks", "WaitTask"]


async def test_tasks_are_isolated_between_tenants_with_not_found(running: Running) -> None:
    tenant = await _tenant_of(running, running.key_a)
    task = await running.board.create(tenant, "recognition")
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await running.tasks.GetTask(
            tasks_pb2.GetTaskRequest(id=str(task.id)), metadata=running.auth(running.key_b)
        )
    details = details_of(hidden.value)
    assert (details.code, details.reason, details.metadata) == (
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
        {"task_id": str(task.id)},
    )
    listed = await running.tasks.ListTasks(
        tasks_pb2.ListTasksRequest(task_ids=[str(task.id)]), metadata=running.auth(running.key_b)
    )
    assert (listed.count, list(listed.results)) == (0, [])


async def test_wait_task_answers_the_result_when_done(running: Running) -> None:
    tenant = await _tenant_of(running, running.key_a)
    task = await running.board.create(tenant, "recognition")
    waiting = asyncio.ensure_future(
        running.tasks.WaitTask(
            tasks_pb2.WaitTaskRequest(id=str(task.id)), metadata=running.auth(running.key_a), timeout=30
        )
    )
    while task.id not in running.board._waiters:
        await asyncio.sleep(0.01)
    await running.board.complete(task.id, RESULT)
    answer = await waiting
    assert answer.task.status == tasks_pb2.TASK_STATUS_SUCCESS
    (prediction,) = answer.task.data.recognition.outputs[0].labels.predicted
    assert (prediction.label_id, prediction.label_name, prediction.score, prediction.roi.region_id) == (
        16,
        "dog",
        0.75,
        1,
    )
    assert (prediction.roi.bbox.xmin, prediction.roi.bbox.ymax) == (0.25, 1.0)
    assert answer.task.date_updated.ToDatetime() >= answer.task.date_created.ToDatetime()


async def test_wait_task_answers_the_pending_task_before_the_deadline(running: Running) -> None:
    tenant = await _tenant_of(running, running.key_a)
    task = await running.board.create(tenant, "recognition")
    answer = await running.tasks.WaitTask(
        tasks_pb2.WaitTaskRequest(id=str(task.id)), metadata=running.auth(running.key_a), timeout=0.5
    )
    assert answer.task.status == tasks_pb2.TASK_STATUS_PENDING


async def test_failed_task_and_bad_arguments_carry_their_details(running: Running) -> None:
    from sightd.app.errors import BadRequestError, FieldViolation

    tenant = await _tenant_of(running, running.key_a)
    task = await running.board.create(tenant, "recognition")
    await running.board.fail(
        task.id,
        BadRequestError(
            "corrupt image",
            reason="INVALID_IMAGE",
            violations=[FieldViolation("inputs[0].image.source", "corrupt")],
        ),
    )
    answer = await running.tasks.GetTask(
        tasks_pb2.GetTaskRequest(id=str(task.id)), metadata=running.auth(running.key_a)
    )
    assert answer.task.status == tasks_pb2.TASK_STATUS_ERROR
    assert (answer.task.error.code, answer.task.error.message, answer.task.error.reason) == (
        3,
        "corrupt image",
        "INVALID_IMAGE",
    )
    assert answer.task.error.field_violations[0].field == "inputs[0].image.source"
    assert not answer.task.HasField("data")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await running.tasks.ListTasks(
            tasks_pb2.ListTasksRequest(task_ids=["1"], limit=5000), metadata=running.auth(running.key_a)
        )
    details = details_of(refused.value)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in details.violations] == ["limit"]


async def test_message_size_limit_is_the_configured_one(database: Database, tmp_path: Path) -> None:
    async with database.write() as connection:
        _, key = await keys.create_key(connection)
    server, _ = await _start(database, tmp_path, max_message_bytes=4 << 20)
    options = [("grpc.max_send_message_length", 64 << 20)]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}", options=options) as channel:
            stub = tasks_pb2_grpc.TaskServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GetTask(
                    tasks_pb2.GetTaskRequest(id="1" * (5 << 20)), metadata=[("x-api-key", key)]
                )
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            with pytest.raises(grpc.aio.AioRpcError) as small:
                await stub.GetTask(
                    tasks_pb2.GetTaskRequest(id="1" * (3 << 20)), metadata=[("x-api-key", key)]
                )
            assert small.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await server.server.stop(0)


async def test_drain_lets_calls_in_flight_finish(running: Running) -> None:
    tenant = await _tenant_of(running, running.key_a)
    task = await running.board.create(tenant, "recognition")
    waiting = asyncio.ensure_future(
        running.tasks.WaitTask(
            tasks_pb2.WaitTaskRequest(id=str(task.id)), metadata=running.auth(running.key_a), timeout=30
        )
    )
    while task.id not in running.board._waiters:
        await asyncio.sleep(0.01)
    draining = asyncio.ensure_future(running.server.drain(grace=20))
    await asyncio.sleep(0.05)
    await running.board.complete(task.id, RESULT)
    assert (await waiting).task.status == tasks_pb2.TASK_STATUS_SUCCESS
    await draining
    with pytest.raises(grpc.aio.AioRpcError) as after:
        await running.tasks.GetTask(
            tasks_pb2.GetTaskRequest(id=str(task.id)), metadata=running.auth(running.key_a), timeout=5
        )
    assert after.value.code() == grpc.StatusCode.UNAVAILABLE


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, made by the openssl command-line tool."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl tool makes the test certificate")
async def test_tls_when_a_certificate_is_configured(database: Database, tmp_path: Path) -> None:
    async with database.write() as connection:
        _, key = await keys.create_key(connection)
    cert, private_key = _self_signed(tmp_path)
    server, _ = await _start(database, tmp_path, tls_cert=cert, tls_key=private_key)
    try:
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        async with grpc.aio.secure_channel(f"127.0.0.1:{server.port}", credentials) as channel:
            stub = tasks_pb2_grpc.TaskServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await stub.GetTask(
                    tasks_pb2.GetTaskRequest(id="1"), metadata=[("x-api-key", key)], timeout=10
                )
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND  # served over TLS
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as plain:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await tasks_pb2_grpc.TaskServiceStub(plain).GetTask(
                    tasks_pb2.GetTaskRequest(id="1"), metadata=[("x-api-key", key)], timeout=5
                )
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # no plaintext on a TLS port
    finally:
        await server.server.stop(0)


async def test_metrics_count_calls_by_method_and_code_and_the_gate_holds_until_open(
    database: Database, tmp_path: Path
) -> None:
    async with database.write() as connection:
        _, key = await keys.create_key(connection)
    settings = replace(load_settings(environ={}), data_dir=tmp_path, host="127.0.0.1", grpc_port=0)
    board = TaskBoard(database, ttl=600)

    async def authenticate(api_key: str) -> int | None:
        async with database.read() as connection:
            return await keys.authenticate(connection, api_key)

    registry = CollectorRegistry()
    service = Service(
        "sightd.v1.TaskService", TaskServicer(board), tasks_pb2_grpc.add_TaskServiceServicer_to_server
    )
    server = GrpcServer(
        settings, [service], authenticate, interceptors=[MetricsInterceptor(registry)], gate=True
    )
    await server.start()
    metrics = MetricsServer(registry, "127.0.0.1", 0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = tasks_pb2_grpc.TaskServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as starting:
                await stub.GetTask(tasks_pb2.GetTaskRequest(id="1"), metadata=[("x-api-key", key)])
            details = details_of(starting.value)
            assert (details.code, details.reason, details.retry_after) == (
                grpc.StatusCode.UNAVAILABLE,
                "STARTING",
                1.0,
            )
            health = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service="sightd.v1.TaskService")
            assert (await health.Check(request)).status == health_pb2.HealthCheckResponse.NOT_SERVING
            await server.open()
            assert (await health.Check(request)).status == health_pb2.HealthCheckResponse.SERVING
            for _ in range(2):
                with pytest.raises(grpc.aio.AioRpcError):
                    await stub.GetTask(tasks_pb2.GetTaskRequest(id="1"), metadata=[("x-api-key", key)])
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.GetTask(tasks_pb2.GetTaskRequest(id="1"))
            await stub.ListTasks(tasks_pb2.ListTasksRequest(), metadata=[("x-api-key", key)])
        scraped = await asyncio.to_thread(
            lambda: (
                urllib.request.urlopen(f"http://127.0.0.1:{metrics.port}/metrics", timeout=10).read().decode()
            )
        )
    finally:
        metrics.close()
        await server.server.stop(0)
    labels = 'grpc_service="sightd.v1.TaskService",grpc_type="unary"'
    expected = {
        f'grpc_server_handled_total{{grpc_code="UNAVAILABLE",grpc_method="GetTask",{labels}}} 1.0',
        f'grpc_server_handled_total{{grpc_code="NOT_FOUND",grpc_method="GetTask",{labels}}} 2.0',
        f'grpc_server_handled_total{{grpc_code="UNAUTHENTICATED",grpc_method="GetTask",{labels}}} 1.0',
        f'grpc_server_handled_total{{grpc_code="OK",grpc_method="ListTasks",{labels}}} 1.0',
        f'grpc_server_started_total{{grpc_method="GetTask",{labels}}} 4.0',
        f'grpc_server_handling_seconds_count{{grpc_method="GetTask",{labels}}} 4.0',
    }
    assert expected <= set(scraped.splitlines())
