"""The REST gateway's ASGI application: v0.7 paths and JSON over the public sightd.v1 gRPC API.

It is a gRPC client like any other (one channel, reused by every request); the API key of each request
(``X-API-KEY``, or ``Authorization: Bearer``) goes on as gRPC metadata, so the gateway holds no credentials
and sees nothing a key may not see. Routing is a table of regular expressions (``routes.ROUTES``): a path
matches with or without its trailing slash (the official client sends both kinds) and repeated slashes
count as one, so no request is ever redirected (a redirected POST comes back as a GET). Every answer,
errors included, is JSON with ``Content-Type: application/json`` (the client returns raw bytes otherwise).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from starlette.datastructures import FormData
from starlette.requests import Request

from sightd.app.errors import FieldViolation
from sightd.gateway.errors import HttpError, bad_request, from_rpc_error, not_found
from sightd.v1 import (
    inference_pb2_grpc,
    networks_pb2_grpc,
    recognition_pb2_grpc,
    tasks_pb2_grpc,
)

log = logging.getLogger("sightd.gateway")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# What a handler answers: the HTTP status and the JSON document (None: no body, for 204).
Answer = tuple[int, Any]
Handler = Callable[["Call"], Awaitable[Answer]]

PREFIX = "/v0.7"
_SLASHES = re.compile(r"/{2,}")
_JSON = [(b"content-type", b"application/json")]
MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """How long gRPC calls may take and how much a request may carry."""

    # Every answer must reach the official client within its 8 s read timeout: a later one makes it retry
    # (and a retried inference is a duplicate task). Calls that run longer answer 504.
    call_timeout: float = 7.0
    # Network uploads: the client waits 600 s for them.
    upload_timeout: float = 590.0
    # JSON bodies and inference forms (an image is at most max_image_bytes, 32 MiB, 43 MiB in base64).
    max_body_bytes: int = 64 * MiB
    # Network creation forms (the server limits each file to max_upload_bytes).
    max_upload_body_bytes: int = 16 * 2048 * MiB
    # GET of a task: how long to wait for a pending one to finish before answering it as it is
    # (rest_task_wait_seconds; 0: at once).
    task_wait: float = 0.0


class Stubs:
    """Clients of every sightd.v1 service on one channel."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.networks = networks_pb2_grpc.NetworkServiceStub(channel)
        self.specs = recognition_pb2_grpc.RecognitionSpecServiceStub(channel)
        self.versions = recognition_pb2_grpc.RecognitionVersionServiceStub(channel)
        self.inference = inference_pb2_grpc.InferenceServiceStub(channel)
        self.tasks = tasks_pb2_grpc.TaskServiceStub(channel)


@dataclass
class Call:
    """One HTTP request being answered: the request, its path parameters and the gateway's clients."""

    request: Request
    params: dict[str, str]
    stubs: Stubs
    limits: Limits
    metadata: tuple[tuple[str, str], ...]
    forms: list[FormData] = field(default_factory=list)

    @property
    def timeout(self) -> float:
        return self.limits.call_timeout

    def query_int(self, name: str, default: int) -> int:
        values = self.request.query_params.getlist(name)
        if not values:
            return default
        text = values[-1].strip()
        if not re.fullmatch(r"\d{1,9}", text):
            problem = "must be a non-negative integer"
            raise bad_request(f"{name}: {problem}", violations=[FieldViolation(name, problem)])
        return int(text)

    def query_list(self, name: str) -> list[str]:
        """A repeated parameter (``task_ids=1&task_ids=2``); comma-separated values are split too."""
        values: list[str] = []
        for value in self.request.query_params.getlist(name):
            values += [item.strip() for item in value.split(",") if item.strip()]
        return values

    def base_url(self) -> str:
        return str(self.request.url.replace(query=""))


def _metadata(headers: Sequence[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    key = authorization = None
    for name, value in headers:
        if name == b"x-api-key":
            key = value.decode("latin-1").strip()
        elif name == b"authorization":
            authorization = value.decode("latin-1").strip()
    if key:
        return (("x-api-key", key),)
    if authorization:
        return (("authorization", authorization),)
    return ()


@dataclass(frozen=True)
class Route:
    """A path of the API (as the client writes it) and its handlers by method."""

    path: str
    handlers: dict[str, Handler]
    # True for network uploads: the body may be as large as the files the server accepts.
    uploads: bool = False
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path.rstrip("/"))
        object.__setattr__(self, "pattern", re.compile(regex + r"\Z"))


class Gateway:
    """The ASGI application. ``routes`` maps paths under ``/v0.7`` to handlers; ``extra`` answers paths
    outside the API (the OpenAPI document)."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        routes: Sequence[Route],
        *,
        limits: Limits | None = None,
        documents: dict[str, Any] | None = None,
    ) -> None:
        self.stubs = Stubs(channel)
        self.routes = list(routes)
        self.limits = limits or Limits()
        self.documents = documents or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = _SLASHES.sub("/", scope["path"])
        trimmed = path.rstrip("/") or "/"
        call: Call | None = None
        try:
            if trimmed in self.documents:
                if scope["method"] not in ("GET", "HEAD"):
                    raise HttpError(405, "method not allowed", code="UNIMPLEMENTED")
                await _respond(send, 200, self.documents[trimmed])
                return
            if not trimmed.startswith(PREFIX + "/"):
                raise not_found(f"no such path: {_cut(path)} (the API is under {PREFIX}/)")
            route, handler, params = self._match(trimmed[len(PREFIX) :], scope["method"])
            limit = self.limits.max_upload_body_bytes if route.uploads else self.limits.max_body_bytes
            request = Request(scope, _limited(receive, limit, _content_length(scope)))
            call = Call(request, params, self.stubs, self.limits, _metadata(scope["headers"]))
            status, document = await handler(call)
            await _respond(send, status, document)
        except HttpError as error:
            await _respond(send, error.status, error.body(), error.headers())
        except grpc.aio.AioRpcError as rpc_error:
            answer = from_rpc_error(rpc_error)
            await _respond(send, answer.status, answer.body(), answer.headers())
        except Exception:
            log.exception("the REST gateway failed to answer", extra={"path": _cut(path)})
            body = {"error": "internal error of the REST gateway", "code": "INTERNAL", "reason": "INTERNAL"}
            await _respond(send, 500, body)
        finally:
            if call is not None:
                for form in call.forms:
                    await form.close()

    def _match(self, path: str, method: str) -> tuple[Route, Handler, dict[str, str]]:
        for route in self.routes:
            match = route.pattern.match(path)
            if match is None:
                continue
            handler = route.handlers.get(method)
            if handler is None:
                allowed = ", ".join(sorted(route.handlers))
                raise HttpError(
                    405, f"{method} is not allowed here (allowed: {allowed})", code="UNIMPLEMENTED"
                )
            return route, handler, match.groupdict()
        raise not_found(f"no such path: {_cut(PREFIX + path)}")


def _cut(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _limited(receive: Receive, limit: int, declared: int | None) -> Receive:
    """``receive`` that refuses bodies over ``limit`` bytes (413), declared or streamed."""
    if declared is not None and declared > limit:
        raise HttpError(413, f"the request body is over {limit} bytes", code="RESOURCE_EXHAUSTED")
    received = 0

    async def wrapped() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise HttpError(413, f"the request body is over {limit} bytes", code="RESOURCE_EXHAUSTED")
        return message

    return wrapped


def encode(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


async def _respond(
    send: Send, status: int, document: Any, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    body = b"" if document is None else encode(document)
    head = [*_JSON, (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
