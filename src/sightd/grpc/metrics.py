"""Prometheus metrics of the gRPC server: calls started and handled by method and status code, and their
duration, with go-grpc-prometheus's names (``grpc_server_handled_total{grpc_service, grpc_method,
grpc_type, grpc_code}``) so that existing dashboards apply. The runtime registers its own metrics (time in
queue, preprocessing, inference, post-processing, batch sizes) on the same registry; ``serve_metrics``
exposes it over HTTP.

A method's labelled metrics (:class:`MethodMetrics`) are looked up once, at its first call, and its handled
counter once per status code: a call only increments them. They are ``sightd.metric_cells``', cheaper to
update than prometheus_client's and exported alike. ``sightd.grpc.server.GrpcServer`` folds a
:class:`MetricsInterceptor` into its own interceptor, which also builds each method's handler once.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIServer

import grpc
import prometheus_client
from prometheus_client import CollectorRegistry

from sightd.grpc.wrapping import wrap_handler
from sightd.metric_cells import Counter, CounterChild, Histogram, HistogramChild

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
# Inference calls take up to seconds, metadata calls milliseconds; WaitTask up to max_wait.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600)


def _rpc_type(handler: grpc.RpcMethodHandler[Any, Any]) -> str:
    if handler.request_streaming and handler.response_streaming:
        return "bidi_stream"
    if handler.request_streaming:
        return "client_stream"
    return "server_stream" if handler.response_streaming else "unary"


class MethodMetrics:
    """The metrics of one method: its started counter and duration histogram, and its handled counter
    per status code (labelled at the first call that ends with the code)."""

    __slots__ = ("_handled", "_handled_by_code", "_labels", "duration", "started")

    def __init__(self, interceptor: MetricsInterceptor, labels: tuple[str, str, str]) -> None:
        self.started: CounterChild = interceptor.started.labels(*labels)
        self.duration: HistogramChild = interceptor.duration.labels(*labels)
        self._handled = interceptor.handled
        self._labels = labels
        self._handled_by_code: dict[Any, CounterChild] = {}

    def handled(self, code: Any) -> CounterChild:
        """The handled counter of a status code (a ``grpc.StatusCode``, or its number)."""
        counter = self._handled_by_code.get(code)
        if counter is None:
            counter = self._handled_by_code[code] = self._handled.labels(*self._labels, _code_name(code))
        return counter


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts every call the server routes to a method (placed first, it also sees the calls that
    authentication refuses). ``GrpcServer`` folds it into its own interceptor (first in effect, before the
    start gate and authentication); on a server of its own it wraps the handler of every call, since
    interceptors after it may answer each call differently."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["grpc_service", "grpc_method", "grpc_type"]
        self.started = Counter(
            "grpc_server_started_total", "RPCs started on the server.", labels, registry=registry
        )
        self.handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, whatever their status code.",
            [*labels, "grpc_code"],
            registry=registry,
        )
        self.duration = Histogram(
            "grpc_server_handling_seconds",
            "Time from the start of an RPC to its answer (the last message of a stream).",
            labels,
            buckets=_BUCKETS,
            registry=registry,
        )
        self._methods: dict[str, MethodMetrics] = {}

    def of_method(self, method: str, handler: grpc.RpcMethodHandler[Any, Any]) -> MethodMetrics:
        """The metrics of a method (``/package.Service/Method``) that ``handler`` serves."""
        found = self._methods.get(method)
        if found is None:
            service, _, name = method.lstrip("/").rpartition("/")
            found = self._methods[method] = MethodMetrics(self, (service, name, _rpc_type(handler)))
        return found

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[_Req, _Resp] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Req, _Resp] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        metrics = self.of_method(handler_call_details.method, handler)
        rebuilt: grpc.RpcMethodHandler[_Req, _Resp] = wrap_handler(handler, metrics, guarded=False)
        return rebuilt


def _code_name(code: Any) -> str:
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    try:
        return str(grpc.StatusCode(code).name)
    except ValueError:
        # grpc.aio reports codes as cygrpc integers in some paths.
        by_number = {status.value[0]: status.name for status in grpc.StatusCode}
        return str(by_number.get(code, "UNKNOWN"))


class MetricsServer:
    """``GET /metrics`` of a registry over plain HTTP, on a thread of its own."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._server: WSGIServer
        self._thread: threading.Thread
        self._server, self._thread = prometheus_client.start_http_server(port, addr=host, registry=registry)
        self.port = int(self._server.server_port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
