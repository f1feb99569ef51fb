"""Rebuilding an RPC method handler around its behaviour, once per method: grpc.aio server interceptors can
only run code around a call (metrics, refusing it) by answering a handler of their own.

A rebuilt handler also sends a response that its behaviour gives as ``bytes`` as it is, already
serialized (``sightd.grpc.inference`` answers recognitions with the message the core serialized); other
responses go through the method's serializer.

What differs from one call to the next cannot live in a handler built once: the interceptor that decides
whether a call is admitted (start gate, authentication) sets :data:`admission` for it instead, and the
handler reads it. grpc.aio resolves a call's handler (the interceptors) and runs it in one coroutine of the
call's own task, so a context variable set by an interceptor is the handler's, and no other call's, for
unary and streaming methods alike.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:
    from sightd.grpc.metrics import MethodMetrics


@dataclass(frozen=True, slots=True)
class Refusal:
    """A call's answer decided before it runs: the handler aborts with ``status``."""

    status: grpc.Status


# The admission of the call being served: its tenant, or the refusal it is answered with.
admission: contextvars.ContextVar[int | Refusal] = contextvars.ContextVar("sightd_admission")

_AbortError = grpc.aio.AbortError
_CancelledError = asyncio.CancelledError
_OK = grpc.StatusCode.OK
_UNKNOWN = grpc.StatusCode.UNKNOWN
_CANCELLED = grpc.StatusCode.CANCELLED
_perf_counter = time.perf_counter


def _as_coroutine(behavior: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """A behaviour to await: coroutine functions as they are, others called inline (their result awaited
    when it is awaitable)."""
    if inspect.iscoroutinefunction(behavior):
        return behavior

    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        result = behavior(request, context)
        return await result if isinstance(result, Awaitable) else result

    return call


def _sending_bytes(serialize: Callable[[Any], bytes] | None) -> Callable[[Any], bytes] | None:
    """The method's response serializer, passing responses that are ``bytes`` already through."""
    if serialize is None:
        return None
    serializer = serialize

    def serialized(response: Any) -> bytes:
        return response if response.__class__ is bytes else serializer(response)

    return serialized


def wrap_handler(
    handler: grpc.RpcMethodHandler[Any, Any], metrics: MethodMetrics | None, *, guarded: bool
) -> grpc.RpcMethodHandler[Any, Any]:
    """The same handler, its behaviour counted in ``metrics`` (started, duration, handled by code), and,
    when ``guarded``, run only if :data:`admission` holds no :class:`Refusal` (aborting with its status
    otherwise, inside the metrics). For an answer streamed by an async generator, the call lasts until its
    last message. Responses given as ``bytes`` are sent as they are. Build it once per method: calling it
    costs what is listed above and nothing more."""
    if metrics is None and not guarded:
        return handler
    behavior: Any
    factory: Any
    if handler.request_streaming and handler.response_streaming:
        behavior, factory = handler.stream_stream, grpc.stream_stream_rpc_method_handler
    elif handler.request_streaming:
        behavior, factory = handler.stream_unary, grpc.stream_unary_rpc_method_handler
    elif handler.response_streaming:
        behavior, factory = handler.unary_stream, grpc.unary_stream_rpc_method_handler
    else:
        behavior, factory = handler.unary_unary, grpc.unary_unary_rpc_method_handler
    assert behavior is not None
    wrapped: Callable[..., Any]
    if inspect.isasyncgenfunction(behavior):
        wrapped = _streaming(behavior, metrics, guarded)
    else:
        wrapped = _unary(_as_coroutine(behavior), metrics, guarded)
    rebuilt: grpc.RpcMethodHandler[Any, Any] = factory(
        wrapped,
        request_deserializer=handler.request_deserializer,
        response_serializer=_sending_bytes(handler.response_serializer),
    )
    return rebuilt


def _unary(
    behavior: Callable[..., Awaitable[Any]], metrics: MethodMetrics | None, guarded: bool
) -> Callable[..., Awaitable[Any]]:
    """A coroutine behaviour (a unary answer, or a stream written through the context) wrapped."""
    if metrics is None:

        async def admitted(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            decided = admission.get()
            if isinstance(decided, Refusal):
                await context.abort_with_status(decided.status)
            return await behavior(request, context)

        return admitted

    started = metrics.started.inc
    duration = metrics.duration.observe
    handled = metrics.handled

    async def observed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        started()
        start = _perf_counter()
        code: Any = _UNKNOWN
        try:
            if guarded:
                decided = admission.get()
                if isinstance(decided, Refusal):
                    await context.abort_with_status(decided.status)
            response = await behavior(request, context)
            code = context.code() or _OK
            return response
        except _AbortError:
            code = context.code() or _UNKNOWN
            raise
        except BaseException as error:
            code = _CANCELLED if isinstance(error, _CancelledError) else _UNKNOWN
            raise
        finally:
            duration(_perf_counter() - start)
            handled(code).inc()

    return observed


def _streaming(
    behavior: Callable[..., AsyncIterator[Any]], metrics: MethodMetrics | None, guarded: bool
) -> Callable[..., AsyncIterator[Any]]:
    """An async generator behaviour (a streamed answer) wrapped; the call lasts until its last message."""
    if metrics is None:

        async def admitted(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            decided = admission.get()
            if isinstance(decided, Refusal):
                await context.abort_with_status(decided.status)
            async for item in behavior(request, context):
                yield item

        return admitted

    started = metrics.started.inc
    duration = metrics.duration.observe
    handled = metrics.handled

    async def observed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        started()
        start = _perf_counter()
        code: Any = _UNKNOWN
        try:
            if guarded:
                decided = admission.get()
                if isinstance(decided, Refusal):
                    await context.abort_with_status(decided.status)
            async for item in behavior(request, context):
                yield item
            code = context.code() or _OK
        except _AbortError:
            code = context.code() or _UNKNOWN
            raise
        except BaseException as error:
            code = _CANCELLED if isinstance(error, _CancelledError) else _UNKNOWN
            raise
        finally:
            duration(_perf_counter() - start)
            handled(code).inc()

    return observed
