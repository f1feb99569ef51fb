"""Serving the gateway: uvicorn in the running event loop, with one gRPC channel to the service.

``sightd serve`` starts it next to the gRPC server (same process and loop): its unary calls are served
in-process by that server's interceptors and handlers (``sightd.grpc.local``), its streamed ones go through
a private Unix socket of the server; the same public API, interceptors and API keys either way, and no TLS
to set up between the two. ``sightd gateway --grpc-target HOST:PORT`` runs it alone against any sightd
service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import uvicorn

from sightd.gateway.app import PREFIX, Gateway, Limits
from sightd.gateway.openapi import openapi_document
from sightd.gateway.routes import routes

log = logging.getLogger("sightd.gateway")


def create_app(channel: grpc.aio.Channel, limits: Limits | None = None) -> Gateway:
    """The ASGI application over a channel to a sightd service."""
    document = openapi_document()
    return Gateway(
        channel,
        routes(),
        limits=limits,
        documents={PREFIX + "/openapi.json": document, "/openapi.json": document},
    )


def channel_options(max_message_bytes: int) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        # Retries of calls that never reached the server (the service restarting) are transparent.
        ("grpc.enable_retries", 1),
        ("grpc.keepalive_time_ms", 60_000),
    ]


def open_channel(
    target: str, *, max_message_bytes: int, ca_file: Path | None = None, tls: bool = False
) -> grpc.aio.Channel:
    """A channel to ``target``: plaintext, or TLS when ``tls`` or a CA file is given (the system's roots
    when no CA file)."""
    options = channel_options(max_message_bytes)
    if ca_file is None and not tls:
        return grpc.aio.insecure_channel(target, options=options)
    roots = ca_file.read_bytes() if ca_file is not None else None
    return grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(roots), options=options)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the process that embeds it (``sightd serve``) owns SIGTERM
    and drains everything in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass(frozen=True)
class HttpTls:
    """HTTPS for the gateway: certificate chain and key, and a client CA for mutual TLS."""

    cert: Path
    key: Path
    client_ca: Path | None = None


def _bind(host: str, port: int) -> socket.socket:
    family, kind, protocol, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, protocol)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise OSError(f"the REST gateway cannot listen on {host}:{port}: {error.strerror}") from None
    return sock


class GatewayServer:
    """The HTTP server of a gateway app; :meth:`start` returns the port, :meth:`stop` drains."""

    def __init__(
        self, app: Gateway, host: str, port: int, *, tls: HttpTls | None = None, grace: float = 5.0
    ) -> None:
        options: dict[str, Any] = {}
        if tls is not None:
            options = {"ssl_certfile": str(tls.cert), "ssl_keyfile": str(tls.key)}
            if tls.client_ca is not None:
                options |= {"ssl_ca_certs": str(tls.client_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=max(1, int(grace)),
            **options,
        )
        # uvicorn's start-up chatter and the multipart parser's complaints about clients' malformed bodies
        # (answered 400) would flood the service's log; their warnings about the server itself stay.
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        logging.getLogger("python_multipart").setLevel(logging.ERROR)
        self.server = _EmbeddedServer(config)
        self.host = host
        self.port = port
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Binds (an error here is an OSError of this call, not uvicorn's exit) and serves."""
        sock = _bind(self.host, self.port)
        self.port = int(sock.getsockname()[1])
        self._task = asyncio.create_task(self.server.serve(sockets=[sock]), name="sightd-gateway")
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises what made start-up fail
                raise OSError("the REST gateway could not start")
            await asyncio.sleep(0.01)
        log.info("REST gateway listening", extra={"host": self.host, "port": self.port})
        return self.port

    async def stop(self) -> None:
        if self._task is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(BaseException):
            await self._task
        self._task = None
