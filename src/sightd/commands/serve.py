"""``sightd serve``: runs the service until SIGTERM or Ctrl-C, then drains (docs/configuration.md)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

from sightd import config, logs

log = logging.getLogger("sightd.serve")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the gRPC service and its REST gateway "
        "(configuration: flags, SIGHTD_* variables, --config file)",
    )
    config.add_arguments(parser)
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    try:
        settings = config.load_settings(args)
    except config.ConfigError as error:
        print(f"sightd serve: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    return asyncio.run(_run(settings))


async def _run(settings: config.Settings) -> int:
    # Imported here: the service pulls in the runtime and ONNX Runtime, which other commands do not need.
    from sightd.service import SightService

    service = SightService(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        started = await service.start()
    except Exception:
        log.exception("start-up failed")
        await service.stop()
        return 1
    if started.first_key is not None:
        log.warning("an API key was created for this first start; it is printed on stdout, once")
        print("sightd: first start, an API key was created. It is shown once; store it now:", flush=True)
        print(started.first_key, flush=True)
    host = settings.host
    rest = ""
    if started.http_port is not None:
        scheme = "https" if settings.tls_cert is not None else "http"
        rest = f", REST (v0.7) on {scheme}://{host}:{started.http_port}/v0.7/"
    print(
        f"sightd: serving gRPC on {host}:{started.grpc_port}{rest}, metrics on "
        f"http://{host}:{started.metrics_port}/metrics, {len(started.public_specs)} public models",
        flush=True,
    )
    await stop.wait()
    await service.drain()
    return 0
