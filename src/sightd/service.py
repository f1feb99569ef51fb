"""One sightd instance, assembled: store, blobs, runtime, use cases, gRPC server and metrics, with its
start-up and shutdown sequences (``sightd serve`` runs one; tests start them on loopback).

Start-up: the schema is migrated and the first API key made; the gRPC server listens (health: liveness
SERVING, services NOT_SERVING; other calls answer UNAVAILABLE "starting") while the public models are
registered (the zoo built first when missing); the pending tasks are handed back to the runtime and every
service turns SERVING. Shutdown (SIGTERM) drains: health turns NOT_SERVING, new calls are refused, calls and
tasks in flight get ``drain_seconds``; tasks still running then stay pending, and the next start (or another
replica, once their lease runs out) runs them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from prometheus_client import CollectorRegistry

from sightd.app import public_models
from sightd.app.definitions import Definitions
from sightd.app.inference import Inference
from sightd.app.networks import Networks
from sightd.app.recognition import Recognition
from sightd.app.tasks import TaskBoard
from sightd.config import Settings
from sightd.gateway.app import Limits
from sightd.gateway.server import GatewayServer, HttpTls, create_app, open_channel
from sightd.grpc.inference import InferenceServicer
from sightd.grpc.metrics import MetricsInterceptor, MetricsServer
from sightd.grpc.networks import NetworkServicer
from sightd.grpc.recognition import RecognitionSpecServicer, RecognitionVersionServicer
from sightd.grpc.server import GrpcServer, Service
from sightd.grpc.tasks import TaskServicer
from sightd.runtime import Runtime, RuntimeMetrics, RuntimeSettings
from sightd.sources.fetch import FetchPolicy, UrlFetcher
from sightd.store import keys
from sightd.store.blobs import BlobStore
from sightd.store.database import Database, open_database
from sightd.v1 import (
    inference_pb2_grpc,
    networks_pb2_grpc,
    recognition_pb2_grpc,
    tasks_pb2_grpc,
)
from sightd.zoo import build, installed

log = logging.getLogger("sightd.service")


def load_zoo(dest: Path | None) -> installed.Zoo:
    """The built zoo, built first when it is missing or incomplete (from the cached artifacts)."""
    try:
        return installed.load(dest)
    except installed.ZooNotBuiltError as missing:
        log.info("building the public model zoo", extra={"reason": str(missing)})
        build.build(dest, progress=lambda line: log.info("zoo build", extra={"step": line}))
        return installed.load(dest)


@dataclass
class Started:
    """What start-up tells the operator."""

    grpc_port: int
    metrics_port: int
    first_key: str | None
    http_port: int | None = None
    public_specs: dict[str, int] = field(default_factory=dict)


class SightService:
    """The parts of one instance; :meth:`start`, then :meth:`drain` (or :meth:`stop`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = CollectorRegistry()
        self.database: Database | None = None
        self.runtime: Runtime | None = None
        self.fetcher: UrlFetcher | None = None
        self.server: GrpcServer | None = None
        self.metrics: MetricsServer | None = None
        self.gateway: GatewayServer | None = None
        self._gateway_channel: grpc.aio.Channel | None = None
        self._socket_dir: str | None = None
        self.inference: Inference | None = None
        self.board: TaskBoard | None = None
        self._background: list[asyncio.Task[None]] = []
        self._stopped = False

    async def start(self, on_listening: Callable[[int], None] | None = None) -> Started:
        settings = self.settings
        blobs = BlobStore(settings.blob_dir)
        await asyncio.to_thread(blobs.remove_stale_uploads)
        database = self.database = await open_database(settings.resolved_database_url)
        async with database.write() as connection:
            configured = settings.api_key
            # A random first key only for the embedded store: replicas of a shared one get theirs from
            # `sightd keys create`, not from whichever replica starts first.
            first_key = (
                await keys.ensure_bootstrap_key(connection, configured)
                if configured or database.is_sqlite
                else None
            )
        runtime = self.runtime = Runtime(
            RuntimeSettings.from_settings(settings), RuntimeMetrics(self.registry)
        )
        await runtime.start()
        board = self.board = TaskBoard(
            database,
            ttl=settings.task_ttl,
            poll_interval=settings.task_poll_interval,
            max_wait=settings.max_wait,
            owner=settings.resolved_instance_id,
            lease=settings.task_lease,
        )
        policy = FetchPolicy(
            allowed_hosts=settings.allow_url_host,
            timeout=settings.url_timeout,
            max_bytes=settings.max_image_bytes,
            max_redirects=settings.url_max_redirects,
        )
        fetcher = self.fetcher = UrlFetcher(policy, per_tenant=settings.url_fetches_per_tenant)
        definitions = Definitions(database, blobs, runtime)
        networks = Networks(
            database,
            blobs,
            definitions.check_network,
            max_upload_bytes=settings.max_upload_bytes,
            task_ttl=settings.task_ttl,
            on_change=definitions.forget,
        )
        recognition = Recognition(database, blobs, definitions.check_version, on_change=definitions.forget)
        inference = self.inference = Inference(
            definitions,
            board,
            runtime,
            fetcher,
            max_image_bytes=settings.max_image_bytes,
            task_timeout=settings.task_timeout,
            max_running_tasks=settings.max_running_tasks,
        )
        services = [
            Service(
                "sightd.v1.NetworkService",
                NetworkServicer(networks, inference.infer_network),
                networks_pb2_grpc.add_NetworkServiceServicer_to_server,
            ),
            Service(
                "sightd.v1.RecognitionSpecService",
                RecognitionSpecServicer(recognition),
                recognition_pb2_grpc.add_RecognitionSpecServiceServicer_to_server,
            ),
            Service(
                "sightd.v1.RecognitionVersionService",
                RecognitionVersionServicer(recognition),
                recognition_pb2_grpc.add_RecognitionVersionServiceServicer_to_server,
            ),
            Service(
                "sightd.v1.InferenceService",
                InferenceServicer(inference),
                inference_pb2_grpc.add_InferenceServiceServicer_to_server,
            ),
            Service(
                "sightd.v1.TaskService", TaskServicer(board), tasks_pb2_grpc.add_TaskServiceServicer_to_server
            ),
        ]

        async def authenticate(key: str) -> int | None:
            async with database.read() as connection:
                return await keys.authenticate(connection, key)

        server = self.server = GrpcServer(
            settings, services, authenticate, interceptors=[MetricsInterceptor(self.registry)], gate=True
        )
        if settings.rest_gateway:
            self._socket_dir = tempfile.mkdtemp(prefix="sightd-")
            server.listen_locally(f"{self._socket_dir}/grpc.sock")
        port = await server.start()
        if on_listening is not None:
            on_listening(port)
        self.metrics = await asyncio.to_thread(
            MetricsServer, self.registry, settings.host, settings.metrics_port
        )
        started = Started(port, self.metrics.port, first_key)
        if self._socket_dir is not None:
            started.http_port = await self._start_gateway(f"unix:{self._socket_dir}/grpc.sock")
        if settings.public_models:
            zoo = await asyncio.to_thread(load_zoo, settings.zoo_dir)
            registered = await public_models.register(database, blobs, zoo)
            started.public_specs = registered.specs
        max_attempts = settings.task_max_attempts
        self._background = [
            asyncio.create_task(self._recover(), name="sightd-recover"),
            asyncio.create_task(board.expire_forever(), name="sightd-expire"),
            asyncio.create_task(
                board.keep_leases_forever(inference.resume, max_attempts=max_attempts), name="sightd-leases"
            ),
        ]
        await server.open()
        log.info(
            "sightd is serving",
            extra={
                "grpc_port": port,
                "http_port": started.http_port,
                "metrics_port": started.metrics_port,
                "instance": board.owner,
            },
        )
        return started

    async def _start_gateway(self, target: str) -> int:
        """The REST gateway, a client of this server's public API (docs/rest.md). Until start-up is over
        it answers what the gRPC server answers: 503, starting. Its calls with one answer are served
        in-process (sightd.grpc.local), the others through the server's private Unix socket."""
        settings = self.settings
        assert self.server is not None
        channel = self._gateway_channel = self.server.local_channel(
            open_channel(target, max_message_bytes=settings.max_message_bytes)
        )
        limits = Limits(
            max_body_bytes=max(64 << 20, settings.max_message_bytes),
            max_upload_body_bytes=16 * settings.max_upload_bytes + (16 << 20),
            task_wait=settings.rest_task_wait_seconds,
        )
        tls = (
            HttpTls(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
            if settings.tls_cert is not None and settings.tls_key is not None
            else None
        )
        self.gateway = GatewayServer(
            create_app(channel, limits),
            settings.host,
            settings.http_port,
            tls=tls,
            grace=settings.drain_seconds,
        )
        return await self.gateway.start()

    async def _recover(self) -> None:
        assert self.board is not None
        assert self.inference is not None
        try:
            await self.board.recover(self.inference.resume, max_attempts=self.settings.task_max_attempts)
        except Exception:
            log.exception("recovering the pending tasks failed")

    async def drain(self, grace: float | None = None) -> None:
        """Graceful stop: calls and tasks in flight get ``grace`` (drain_seconds) to finish."""
        grace = self.settings.drain_seconds if grace is None else grace
        if self._stopped:
            return
        self._stopped = True
        log.info("draining", extra={"grace_seconds": grace})
        loop = asyncio.get_running_loop()
        end = loop.time() + grace
        for task in self._background:
            task.cancel()
        if self.gateway is not None:
            # First the HTTP side: its requests in flight still need the gRPC server to answer them.
            await self.gateway.stop()
        if self._gateway_channel is not None:
            await self._gateway_channel.close()
        if self.server is not None:
            await self.server.drain(max(0.0, end - loop.time()))
        if self.inference is not None:
            finished = await self.inference.wait_idle(max(0.0, end - loop.time()))
            if not finished:
                log.warning(
                    "tasks still running at the end of the drain stay pending for the next start",
                    extra={"tasks": self.inference.running},
                )
            await self.inference.cancel()
        await self._close()

    async def stop(self) -> None:
        """Immediate stop (tests): the same as a drain with no grace."""
        await self.drain(0.0)

    async def _close(self) -> None:
        for task in self._background:
            with contextlib.suppress(BaseException):
                await task
        if self.runtime is not None:
            await self.runtime.stop()
        if self.fetcher is not None:
            self.fetcher.close()
        if self.metrics is not None:
            await asyncio.to_thread(self.metrics.close)
        if self.database is not None:
            await self.database.close()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
        log.info("stopped")
