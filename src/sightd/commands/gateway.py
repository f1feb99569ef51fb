"""``sightd gateway``: the REST gateway alone, in front of a sightd gRPC service elsewhere (docs/rest.md).

``sightd serve`` already runs one next to its gRPC server; this command is for gateways scaled or placed
apart (in front of a cluster's load balancer, for instance). SIGTERM or Ctrl-C stops it after the requests
in flight (``drain_seconds``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from sightd import config, logs

log = logging.getLogger("sightd.gateway")
_SETTINGS = (
    "host",
    "http_port",
    "tls_cert",
    "tls_key",
    "tls_client_ca",
    "max_message_bytes",
    "max_upload_bytes",
    "drain_seconds",
    "rest_task_wait_seconds",
    "log_format",
    "log_level",
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "gateway", help="run the REST gateway (v0.7 JSON) in front of a sightd gRPC service"
    )
    parser.add_argument(
        "--grpc-target",
        required=True,
        help="HOST:PORT of the sightd gRPC service (any gRPC target: dns:///name:port, unix:/path...)",
    )
    parser.add_argument(
        "--grpc-ca",
        type=Path,
        default=None,
        help="PEM CA certificates: the gRPC service speaks TLS and is verified with them",
    )
    parser.add_argument(
        "--grpc-tls", action="store_true", help="the gRPC service speaks TLS (verified with the system's CAs)"
    )
    config.add_arguments(parser, _SETTINGS)
    parser.set_defaults(handler=_gateway)


def _gateway(args: argparse.Namespace) -> int:
    try:
        settings = config.load_settings(args)
    except config.ConfigError as error:
        print(f"sightd gateway: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    return asyncio.run(_run(settings, args.grpc_target, args.grpc_ca, args.grpc_tls))


async def _run(settings: config.Settings, target: str, ca_file: Path | None, tls: bool) -> int:
    from sightd.gateway.app import Limits
    from sightd.gateway.server import GatewayServer, HttpTls, create_app, open_channel

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        channel = open_channel(target, max_message_bytes=settings.max_message_bytes, ca_file=ca_file, tls=tls)
    except OSError as error:
        print(f"sightd gateway: cannot read {ca_file}: {error.strerror}", file=sys.stderr)
        return 2
    limits = Limits(
        max_body_bytes=max(64 << 20, settings.max_message_bytes),
        max_upload_body_bytes=16 * settings.max_upload_bytes + (16 << 20),
        task_wait=settings.rest_task_wait_seconds,
    )
    http_tls = (
        HttpTls(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
        if settings.tls_cert is not None and settings.tls_key is not None
        else None
    )
    server = GatewayServer(
        create_app(channel, limits),
        settings.host,
        settings.http_port,
        tls=http_tls,
        grace=settings.drain_seconds,
    )
    try:
        port = await server.start()
    except Exception:
        log.exception("start-up failed")
        await channel.close()
        return 1
    scheme = "https" if http_tls is not None else "http"
    log.info("sightd gateway is serving", extra={"http_port": port, "grpc_target": target})
    print(
        f"sightd: REST gateway (v0.7) on {scheme}://{settings.host}:{port}/v0.7/ -> gRPC {target}", flush=True
    )
    await stop.wait()
    await server.stop()
    await channel.close()
    return 0
