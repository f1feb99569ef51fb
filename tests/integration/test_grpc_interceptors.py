"""The gRPC server's interceptor on a running service: calls presenting a key that is not remembered share
one store lookup (and a refused or failed lookup is not remembered), a revocation in this process is seen
once the keys are forgotten, metrics count every call (refused and streaming ones too) by method and code,
and each call's servicer sees its caller's tenant while two tenants' calls interleave."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from onnx import TensorProto, helper, numpy_helper
from sqlalchemy import event

from integration.deployment import image_input, refused
from integration.harness import Running, Stubs, running_service
from sightd.app import documents
from sightd.grpc.auth import Authenticator
from sightd.grpc.server import GrpcServer
from sightd.store import keys
from sightd.store.database import Database
from sightd.v1 import inference_pb2, networks_pb2, recognition_pb2, tasks_pb2

CALLS = 16
UNKNOWN_KEY = "sd_aaaaaaaa_" + "b" * 40
SPEC_OUTPUTS = [
    {"labels": {"roi": "NONE", "exclusive": True, "labels": [{"id": 0, "name": "a"}, {"id": 1, "name": "b"}]}}
]
PREPROCESSING = {
    "inputs": [
        {
            "tensor_name": "image",
            "image": {
                "resize_type": "SQUASH",
                "data_type": "FLOAT32",
                "dimension_order": "NCHW",
                "pixel_scaling": 1.0,
                "target_size": "8x8",
                "color_channels": "RGB",
            },
        }
    ],
    "batched_output": True,
}


class KeyLookups:
    """Counts the statements the store runs on API keys (SQLAlchemy's cursor event)."""

    def __init__(self, database: Database) -> None:
        self.count = 0
        self._engine = database.engine.sync_engine
        event.listen(self._engine, "before_cursor_execute", self._seen)

    def _seen(self, _connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "api_keys" in statement:
            self.count += 1

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._seen)


class HeldLookups:
    """Holds the server's key lookups (nothing is held at first): each waits for ``read`` before
    reading the store and for ``answer`` before answering. ``arrived`` counts the calls that asked for
    their admission (a call that has asked waits on the lookup in progress, if any, before the event loop
    runs anything else), ``read_done`` the lookups that have read the store."""

    def __init__(self, auth: Authenticator, monkeypatch: pytest.MonkeyPatch) -> None:
        self.arrived = 0
        self.read_done = 0
        self.read = asyncio.Event()
        self.read.set()
        self.answer = asyncio.Event()
        self.answer.set()
        self.fail = False
        self._expected = 0
        admission, authenticate = auth.admission, auth._authenticate

        def counted(metadata: Any) -> Any:
            decided = admission(metadata)
            self.arrived += 1
            if self.arrived == self._expected:
                self.read.set()
            return decided

        async def held(key: str) -> int | None:
            await self.read.wait()
            if self.fail:
                raise RuntimeError("the store is away")
            tenant = await authenticate(key)
            self.read_done += 1
            await self.answer.wait()
            return tenant

        monkeypatch.setattr(auth, "admission", counted)
        monkeypatch.setattr(auth, "_authenticate", held)

    def until(self, calls: int) -> None:
        """Lookups read the store once ``calls`` more calls have arrived."""
        self._expected = self.arrived + calls
        self.read.clear()

    async def wait_read(self, lookups: int) -> None:
        """Until ``lookups`` lookups in all have read the store."""
        async with asyncio.timeout(30):
            while self.read_done < lookups:
                await asyncio.sleep(0.01)

    def release(self) -> None:
        self.read.set()
        self.answer.set()


def _server(running: Running) -> GrpcServer:
    assert running.service.server is not None
    return running.service.server


def _database(running: Running) -> Database:
    assert running.service.database is not None
    return running.service.database


@pytest.fixture
def lookups_of(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[Running], tuple[KeyLookups, HeldLookups]]]:
    made: list[tuple[KeyLookups, HeldLookups]] = []

    def make(running: Running) -> tuple[KeyLookups, HeldLookups]:
        made.append((KeyLookups(_database(running)), HeldLookups(_server(running).auth, monkeypatch)))
        return made[-1]

    yield make
    for counted, held in made:
        held.release()
        counted.close()


def _list_networks(client: Stubs, key: str | None = None) -> Awaitable[networks_pb2.ListNetworksResponse]:
    metadata = [("x-api-key", key if key is not None else client.key)]
    return client.networks.ListNetworks(networks_pb2.ListNetworksRequest(), metadata=metadata, timeout=30)


async def test_concurrent_calls_with_a_key_not_remembered_share_one_lookup(
    database: Database,
    tmp_path: Path,
    lookups_of: Callable[[Running], tuple[KeyLookups, HeldLookups]],
) -> None:
    url = database.url.render_as_string(hide_password=False)
    async with running_service(tmp_path / "data", url) as running:
        client = running.clients["acme"]
        lookups, held = lookups_of(running)

        held.until(CALLS)
        answers = await asyncio.gather(*(_list_networks(client) for _ in range(CALLS)))
        assert [answer.count for answer in answers] == [0] * CALLS
        assert lookups.count == 1  # not one per call
        await asyncio.gather(*(_list_networks(client) for _ in range(CALLS)))
        assert lookups.count == 1  # remembered

        held.until(CALLS)
        outcomes = await asyncio.gather(*(refused(_list_networks(client, UNKNOWN_KEY)) for _ in range(CALLS)))
        assert {(o.code, o.reason) for o in outcomes} == {
            (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_INVALID")
        }
        assert lookups.count == 2  # shared
        held.until(1)
        assert (await refused(_list_networks(client, UNKNOWN_KEY))).reason == "API_KEY_INVALID"
        assert lookups.count == 3  # a refused key is not remembered

        other = running.clients["globex"]
        held.fail = True
        held.until(4)
        failed = await asyncio.gather(*(refused(_list_networks(other)) for _ in range(4)))
        # Every caller of the failed lookup: UNAVAILABLE, retry later, without the store's error.
        assert {(o.code, o.reason) for o in failed} == {
            (grpc.StatusCode.UNAVAILABLE, "KEY_STORE_UNAVAILABLE")
        }
        held.fail = False
        held.until(1)
        assert (await _list_networks(other)).count == 0
        assert lookups.count == 4  # a failed lookup is not remembered


async def test_a_revoked_key_is_refused_once_forgotten(
    database: Database,
    tmp_path: Path,
    lookups_of: Callable[[Running], tuple[KeyLookups, HeldLookups]],
) -> None:
    url = database.url.render_as_string(hide_password=False)
    async with running_service(tmp_path / "data", url) as running:
        acme, globex = running.clients["acme"], running.clients["globex"]
        auth = _server(running).auth
        _, held = lookups_of(running)
        await _list_networks(acme)
        async with _database(running).write() as connection:
            await keys.revoke_key(connection, keys.key_id(acme.key))
        await _list_networks(acme)  # remembered for a while (cache_seconds)
        auth.forget()
        details = await refused(_list_networks(acme))
        assert (details.code, details.reason) == (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_INVALID")
        assert (await _list_networks(globex)).count == 0

        # A lookup that read the store before a revocation is not remembered once forgotten.
        auth.forget()
        held.answer.clear()
        call = asyncio.ensure_future(_list_networks(globex))
        await held.wait_read(held.read_done + 1)
        async with _database(running).write() as connection:
            await keys.revoke_key(connection, keys.key_id(globex.key))
        auth.forget()
        held.answer.set()
        assert (await call).count == 0  # it began before the revocation
        details = await refused(_list_networks(globex))
        assert (details.code, details.reason) == (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_INVALID")


async def test_metrics_count_every_call_by_method_and_code(tmp_path: Path) -> None:
    async with running_service(tmp_path / "data") as running:
        registry = running.service.registry
        client = running.clients["acme"]
        md = client.metadata

        def sample(name: str, method: str, kind: str, code: str | None = None) -> float:
            service, _, short = method.rpartition("/")
            labels = {"grpc_service": service, "grpc_method": short, "grpc_type": kind}
            if code is not None:
                labels["grpc_code"] = code
            return registry.get_sample_value(name, labels) or 0.0

        expected = [  # method, type, code, calls
            ("sightd.v1.NetworkService/ListNetworks", "unary", "OK", 2),
            ("sightd.v1.TaskService/GetTask", "unary", "NOT_FOUND", 1),
            ("sightd.v1.TaskService/GetTask", "unary", "UNAUTHENTICATED", 2),
            ("sightd.v1.TaskService/WaitTask", "unary", "CANCELLED", 1),
            ("sightd.v1.InferenceService/RecognizeStream", "bidi_stream", "OK", 1),
            ("sightd.v1.InferenceService/RecognizeStream", "bidi_stream", "UNAUTHENTICATED", 1),
            ("sightd.v1.NetworkService/CreateNetwork", "client_stream", "INVALID_ARGUMENT", 1),
            ("sightd.v1.NetworkService/CreateNetwork", "client_stream", "UNAUTHENTICATED", 1),
            ("grpc.health.v1.Health/Check", "unary", "OK", 1),
        ]
        before = {
            (method, code): sample("grpc_server_handled_total", method, kind, code)
            for method, kind, code, _ in expected
        }
        kinds = {method: kind for method, kind, _, _ in expected}
        per_method = ("grpc_server_started_total", "grpc_server_handling_seconds_count")
        started = {(name, m): sample(name, m, kind) for m, kind in kinds.items() for name in per_method}

        for _ in range(2):
            await _list_networks(client)
        await refused(client.tasks.GetTask(tasks_pb2.GetTaskRequest(id="123456"), metadata=md))
        await refused(client.tasks.GetTask(tasks_pb2.GetTaskRequest(id="1")))
        await refused(client.tasks.GetTask(tasks_pb2.GetTaskRequest(id="1"), metadata=[("x-api-key", "x")]))
        assert running.service.board is not None
        tenant = await _tenant_of(running, client.key)
        task = await running.service.board.create(tenant, "recognition")
        waiting = client.tasks.WaitTask(tasks_pb2.WaitTaskRequest(id=str(task.id)), metadata=md, timeout=60)
        async with asyncio.timeout(30):
            while task.id not in running.service.board._waiters:
                await asyncio.sleep(0.01)
        waiting.cancel()
        stream_request = inference_pb2.RecognizeStreamRequest(
            request_id="1",
            request=inference_pb2.RecognizeRequest(spec_id="nothing", inputs=image_input(data=b"x")),
        )
        answers = [a async for a in client.inference.RecognizeStream(iter([stream_request]), metadata=md)]
        assert [a.error.reason for a in answers] == ["NOT_FOUND"]
        await refused(_consume(client.inference.RecognizeStream(iter([stream_request]))))
        chunk = networks_pb2.CreateNetworkRequest(chunk=networks_pb2.FileChunk(field_name="model.onnx"))
        await refused(client.networks.CreateNetwork(iter([chunk]), metadata=md))
        await refused(client.networks.CreateNetwork(iter([chunk])))
        health = health_pb2_grpc.HealthStub(running.channel)
        await health.Check(health_pb2.HealthCheckRequest(service=""))
        unknown = running.channel.unary_unary("/sightd.v1.NetworkService/Nothing")
        with pytest.raises(grpc.aio.AioRpcError) as unimplemented:
            await unknown(b"", metadata=md)
        assert unimplemented.value.code() == grpc.StatusCode.UNIMPLEMENTED

        async with asyncio.timeout(30):  # the server sees the cancellation after the client
            while sample(
                "grpc_server_handled_total", "sightd.v1.TaskService/WaitTask", "unary", "CANCELLED"
            ) < (before[("sightd.v1.TaskService/WaitTask", "CANCELLED")] + 1):
                await asyncio.sleep(0.01)

        for method, kind, code, calls in expected:
            counted = sample("grpc_server_handled_total", method, kind, code) - before[(method, code)]
            assert counted == calls, (method, code)
        for (name, method), value in started.items():
            calls = sum(c for m, _, _, c in expected if m == method)
            assert sample(name, method, kinds[method]) - value == calls, (name, method)
        assert sample("grpc_server_started_total", "sightd.v1.NetworkService/Nothing", "unary") == 0


async def _consume(call: Any) -> list[Any]:
    return [answer async for answer in call]


async def _tenant_of(running: Running, key: str) -> int:
    async with _database(running).read() as connection:
        tenant = await keys.authenticate(connection, key)
    assert tenant is not None
    return tenant


def _tiny_model() -> bytes:
    """image (N, 3, 8, 8) -> GlobalAveragePool -> Flatten -> MatMul (3 x 2) -> Softmax."""
    weight = np.arange(6, dtype=np.float32).reshape(3, 2)
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
            helper.make_node("MatMul", ["features", "weight"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
        ],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2])],
        initializer=[numpy_helper.from_array(weight, "weight")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


async def test_each_call_sees_its_callers_tenant_while_tenants_interleave(
    tmp_path: Path, lookups_of: Callable[[Running], tuple[KeyLookups, HeldLookups]]
) -> None:
    async with running_service(tmp_path / "data") as running:
        clients = {name: running.clients[name] for name in ("acme", "globex")}
        rounds = 4
        auth = _server(running).auth
        _, held = lookups_of(running)

        def interleaved(calls: int) -> None:
            """The next ``calls`` calls all wait for their key's lookup, then go on together: every call's
            admission is decided before any of them runs."""
            auth.forget()
            held.until(calls)

        # Unary: specs created and listed, both tenants' calls in flight together.
        interleaved(2 * rounds)
        outputs = [documents.to_message(o, recognition_pb2.RecognitionSpecOutput) for o in SPEC_OUTPUTS]
        created = await asyncio.gather(
            *(
                client.specs.CreateRecognitionSpec(
                    recognition_pb2.CreateRecognitionSpecRequest(
                        spec=recognition_pb2.RecognitionSpec(name=f"{name} {i}", outputs=outputs)
                    ),
                    metadata=client.metadata,
                )
                for i in range(rounds)
                for name, client in clients.items()
            )
        )
        specs = {name: [c.spec.id for c in created if c.spec.name.startswith(name)] for name in clients}
        interleaved(2 * rounds)
        listed = await asyncio.gather(
            *(
                client.specs.ListRecognitionSpecs(
                    recognition_pb2.ListRecognitionSpecsRequest(), metadata=client.metadata
                )
                for _ in range(rounds)
                for client in clients.values()
            )
        )
        for answer, name in zip(listed, list(clients) * rounds, strict=True):
            assert sorted(spec.id for spec in answer.results) == sorted(specs[name])

        # Unary: tasks of each tenant, asked for by both.
        assert running.service.board is not None
        tasks = {
            name: await running.service.board.create(await _tenant_of(running, client.key), "recognition")
            for name, client in clients.items()
        }
        asked = [(asker, owner) for _ in range(rounds) for asker in clients for owner in clients]

        async def get_task(asker: str, owner: str) -> grpc.StatusCode:
            client = clients[asker]
            try:
                await client.tasks.GetTask(
                    tasks_pb2.GetTaskRequest(id=str(tasks[owner].id)), metadata=client.metadata
                )
            except grpc.aio.AioRpcError as error:
                return error.code()
            return grpc.StatusCode.OK

        interleaved(len(asked))
        codes = await asyncio.gather(*(get_task(asker, owner) for asker, owner in asked))
        assert codes == [
            grpc.StatusCode.OK if asker == owner else grpc.StatusCode.NOT_FOUND for asker, owner in asked
        ]

        # Client stream: networks uploaded together, then listed.
        model = _tiny_model()

        def upload(name: str) -> list[networks_pb2.CreateNetworkRequest]:
            network = networks_pb2.Network(
                name=name,
                framework="onnx",
                preprocessing=documents.to_message(PREPROCESSING, networks_pb2.Preprocessing),
            )
            chunk = networks_pb2.FileChunk(field_name="model.onnx", data=model)
            return [
                networks_pb2.CreateNetworkRequest(network=network),
                networks_pb2.CreateNetworkRequest(chunk=chunk),
            ]

        interleaved(len(clients))
        uploaded = await asyncio.gather(
            *(
                client.networks.CreateNetwork(iter(upload(f"{name} net")), metadata=client.metadata)
                for name, client in clients.items()
            )
        )
        assert [answer.network.name for answer in uploaded] == [f"{name} net" for name in clients]
        interleaved(len(clients))
        networks = await asyncio.gather(*(_list_networks(client) for client in clients.values()))
        for answer, name in zip(networks, clients, strict=True):
            assert [network.name for network in answer.results] == [f"{name} net"]

        # Bidirectional stream: each tenant's specs have no current version; another's are not found.
        def requests() -> list[inference_pb2.RecognizeStreamRequest]:
            return [
                inference_pb2.RecognizeStreamRequest(
                    request_id=f"{owner} {spec_id}",
                    request=inference_pb2.RecognizeRequest(spec_id=spec_id, inputs=image_input(data=b"x")),
                )
                for owner in clients
                for spec_id in specs[owner]
            ]

        interleaved(2 * rounds)
        streams = [
            (name, client.inference.RecognizeStream(iter(requests()), metadata=client.metadata))
            for _ in range(rounds)
            for name, client in clients.items()
        ]
        answered = await asyncio.gather(*(_consume(call) for _, call in streams))
        for (name, _), answers in zip(streams, answered, strict=True):
            reasons = {a.request_id.split()[0]: set() for a in answers}
            for answer in answers:
                reasons[answer.request_id.split()[0]].add(answer.error.reason)
            assert reasons == {
                owner: {"NO_CURRENT_VERSION" if owner == name else "NOT_FOUND"} for owner in clients
            }
