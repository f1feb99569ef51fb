"""The gRPC server: message size limits, keepalive, one interceptor for metrics, the start gate and
authentication, grpc.health.v1 (liveness as the empty service name, readiness per service), server
reflection, optional TLS (mutual with a client CA), and a graceful drain.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sightd.app.errors import UnavailableError
from sightd.config import Settings
from sightd.grpc.auth import PUBLIC_SERVICES, Authenticator
from sightd.grpc.local import LocalChannel, resolver
from sightd.grpc.metrics import MetricsInterceptor
from sightd.grpc.status import to_status
from sightd.grpc.wrapping import Refusal, admission, wrap_handler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Service:
    """A servicer and how to register it: ``name`` is the full service name (``sightd.v1.TaskService``)."""

    name: str
    servicer: Any
    add_to_server: Callable[[Any, grpc.aio.Server], None]


def server_options(settings: Settings) -> list[tuple[str, int]]:
    """Channel arguments of the server (docs/configuration.md)."""
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", settings.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", settings.keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", settings.keepalive_min_ping_interval_ms),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.so_reuseport", 0),
    ]
    if settings.max_connection_age_ms:
        options += [
            ("grpc.max_connection_age_ms", settings.max_connection_age_ms),
            ("grpc.max_connection_age_grace_ms", int(settings.drain_seconds * 1000)),
        ]
    return options


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials of the configured certificate and key (and client CA), or None for plaintext."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    try:
        chain = settings.tls_cert.read_bytes()
        key = settings.tls_key.read_bytes()
        client_ca = settings.tls_client_ca.read_bytes() if settings.tls_client_ca is not None else None
    except OSError as error:
        raise OSError(f"cannot read the TLS files: {error}") from None
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


STARTING = Refusal(
    to_status(
        UnavailableError("the server is starting; retry in a moment", reason="STARTING", retry_after=1.0)
    )
)


class CallInterceptor(grpc.aio.ServerInterceptor):
    """The server's interceptor, the last of its chain: metrics, then the start gate, then authentication,
    in that order of effect. Until start-up is done (migrations, public models, recovery) a call would see
    an incomplete service: while ``closed``, calls other than health and reflection are answered
    UNAVAILABLE (reason STARTING, retry in a second), with no key lookup; then each is authenticated.

    Each method's handler is built once (``wrap_handler``) and answered from then on without asking the
    rest of the chain, which only resolves handlers; what each call decides (its tenant, or its refusal)
    reaches that handler through ``sightd.grpc.wrapping.admission``. The refusal is answered by the
    handler, inside the metrics, so that refused calls are counted with their code."""

    def __init__(self, auth: Authenticator, metrics: MetricsInterceptor | None, *, closed: bool) -> None:
        self.closed = closed
        self._auth = auth
        self._metrics = metrics
        # By method: its handler, and whether it needs a key.
        self._methods: dict[str, tuple[grpc.RpcMethodHandler[Any, Any], bool]] = {}

    def _prepare(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> tuple[grpc.RpcMethodHandler[Any, Any], bool]:
        guarded = not method.startswith(PUBLIC_SERVICES)
        metrics = self._metrics.of_method(method, handler) if self._metrics is not None else None
        prepared = self._methods[method] = (wrap_handler(handler, metrics, guarded=guarded), guarded)
        return prepared

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        prepared = self._methods.get(handler_call_details.method)
        if prepared is None:
            handler = await continuation(handler_call_details)
            if handler is None:  # no such method: UNIMPLEMENTED, not counted
                return None
            prepared = self._prepare(handler_call_details.method, handler)
        handler, guarded = prepared
        if guarded:
            if self.closed:
                admission.set(STARTING)
            else:
                decided = self._auth.admission(handler_call_details.invocation_metadata)
                if isinstance(decided, str):
                    decided = await self._auth.admit(decided)
                admission.set(decided)
        return handler


class GenericRegistration(grpc.aio.Server):
    """The server as service registration sees it (the generated ``add_*_to_server`` functions, health,
    reflection): generic handlers only. Generated code registers every method twice, as a generic handler
    and as a "registered method", and grpc.aio's server keeps one request pending per registered method and
    waits on all of them (``asyncio.wait``) at every call. With sightd's 26 methods that cost about 20 µs
    of latency per call at one client, and 0.5 to 2% of throughput at 8 clients (docs/benchmarks.md). The
    generic handlers route the same methods, and the server's interceptor remembers each method's handler
    after its first call. Everything else goes to the server itself."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server
        # What the server routes, in order, for in-process calls (sightd.grpc.local).
        self.handlers: list[grpc.GenericRpcHandler] = []

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        added = list(generic_rpc_handlers)
        self.handlers += added
        self._server.add_generic_rpc_handlers(added)

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        """Not registered: the generic handlers added with them serve these methods."""

    def add_insecure_port(self, address: str) -> int:
        return self._server.add_insecure_port(address)

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        return self._server.add_secure_port(address, server_credentials)

    async def start(self) -> None:
        await self._server.start()

    async def stop(self, grace: float | None) -> None:
        await self._server.stop(grace)

    async def wait_for_termination(self, timeout: float | None = None) -> bool:
        return await self._server.wait_for_termination(timeout)


class GrpcServer:
    """A started server. Services start NOT_SERVING on the health service until :meth:`set_ready`."""

    def __init__(
        self,
        settings: Settings,
        services: Sequence[Service],
        authenticate: Callable[[str], Awaitable[int | None]],
        *,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        gate: bool = False,
    ) -> None:
        """``interceptors`` run before the start gate and authentication (metrics: a MetricsInterceptor
        last among them is folded into the server's own interceptor); with ``gate``, calls other than
        health and reflection are answered UNAVAILABLE (reason STARTING) until :meth:`open`."""
        self.settings = settings
        self.services = list(services)
        self.auth = Authenticator(authenticate)
        chain = list(interceptors)
        metrics = chain[-1] if chain and isinstance(chain[-1], MetricsInterceptor) else None
        if metrics is not None:
            chain.pop()
        self.interceptor = CallInterceptor(self.auth, metrics, closed=gate)
        self._interceptors: list[grpc.aio.ServerInterceptor] = [*chain, self.interceptor]
        self.server = grpc.aio.server(interceptors=self._interceptors, options=server_options(settings))
        registration = self._registration = GenericRegistration(self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, registration)
        for service in self.services:
            service.add_to_server(service.servicer, registration)
        if settings.reflection:
            names = [service.name for service in self.services]
            names += [health.SERVICE_NAME, reflection.SERVICE_NAME]
            reflection.enable_server_reflection(names, registration)
        self.port = 0
        self._stopped = asyncio.Event()

    def listen_locally(self, path: str) -> None:
        """Also listens, in plaintext, on a Unix socket (before :meth:`start`): the REST gateway of the same
        process makes its streamed calls through it (its unary ones go in-process: :meth:`local_channel`).
        The socket lives in a folder only this user can enter."""
        if self.server.add_insecure_port(f"unix:{path}") == 0:
            raise OSError(f"cannot listen on the Unix socket {path}")

    def local_channel(self, through: grpc.aio.Channel) -> LocalChannel:
        """A channel that calls this server's unary methods in-process, through its interceptors and
        handlers, and the others ``through`` a real channel to it (``sightd.grpc.local``)."""
        return LocalChannel(
            resolver(self._interceptors, self._registration.handlers),
            through,
            max_message_bytes=self.settings.max_message_bytes,
        )

    async def start(self) -> int:
        """Binds and starts serving; returns the port (useful with grpc_port 0)."""
        host = self.settings.host
        address = (
            f"[{host}]:{self.settings.grpc_port}" if ":" in host else f"{host}:{self.settings.grpc_port}"
        )
        credentials = server_credentials(self.settings)
        if credentials is not None:
            self.port = self.server.add_secure_port(address, credentials)
        else:
            self.port = self.server.add_insecure_port(address)
            if not _is_loopback(host):
                log.warning(
                    "the gRPC server listens beyond this machine without TLS: API keys travel in clear "
                    "(set tls_cert and tls_key, or terminate TLS in front of it)",
                    extra={"address": address},
                )
        if self.port == 0:
            raise OSError(f"cannot listen on {address}")
        for service in self.services:
            await self.health.set(service.name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self.server.start()
        log.info(
            "gRPC server listening",
            extra={"address": address, "port": self.port, "tls": credentials is not None},
        )
        return self.port

    async def open(self) -> None:
        """Start-up is over: calls are served, and every service is SERVING on the health service."""
        self.interceptor.closed = False
        for service in self.services:
            await self.set_ready(service.name)

    async def set_ready(self, service_name: str, ready: bool = True) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await self.health.set(service_name, status)

    async def drain(self, grace: float | None = None) -> None:
        """Stops taking calls (health reports NOT_SERVING everywhere so that load balancers move away),
        gives in-flight calls ``grace`` seconds (drain_seconds by default), then cancels the rest."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.settings.drain_seconds if grace is None else grace)
        self._stopped.set()

    def drain_on_signals(self, signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT)) -> None:
        """Drains on SIGTERM (and Ctrl-C) instead of dying with calls in flight."""
        loop = asyncio.get_running_loop()
        for signum in signals:
            loop.add_signal_handler(signum, lambda: asyncio.ensure_future(self.drain()))

    async def wait_stopped(self) -> None:
        await self._stopped.wait()
