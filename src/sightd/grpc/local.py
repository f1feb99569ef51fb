"""Calling this process's own gRPC server without a socket: the channel of the REST gateway that
``sightd serve`` runs next to its gRPC server.

Through a real channel, each of the gateway's calls costs a gRPC call on both sides (the client's call object,
HTTP/2 framing both ways, the request serialized and parsed again, the wake-ups of gRPC's threads and of
the event loop), and the official client makes about three per image (the inference, then its polls of
the task). :class:`LocalChannel` serves the calls with a single answer (unary-unary) in the same event
loop instead, through the same path as a call that came over the network:

- the method is resolved by the server's own interceptors (metrics, the start gate, authentication by the
  call's API key) and generic handlers, so the call is counted, admitted or refused as any other;
- the request message is the one the caller built: it is checked against the server's maximum message
  size, as the channel would, but not serialized and parsed again;
- the handler gets a :class:`LocalContext`: ``abort`` and ``abort_with_status`` end the call with their
  status and trailing metadata (the rich error details), ``time_remaining`` counts down the caller's
  timeout, and the handler is cancelled when the deadline passes or the caller is cancelled;
- the outcome reaches the caller as a real channel gives it: the response message, or a
  ``grpc.aio.AioRpcError`` with the code, details and trailing metadata the handler ended with
  (``DEADLINE_EXCEEDED``, ``UNIMPLEMENTED`` for an unknown method, ``UNKNOWN`` for an exception that the
  handler or an interceptor let out, as grpc.aio's server answers them).

Calls with streamed requests or answers go through the real channel it is given (``through``): network
uploads and the streaming methods, which the gateway uses rarely or never. The gateway itself still only
knows the public gRPC API (generated stubs on a channel); ``sightd gateway`` alone uses a real channel.
tests/integration/test_grpc_local.py checks each outcome against the same call over a real channel.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeAlias

import grpc

log = logging.getLogger(__name__)

Metadata: TypeAlias = tuple[tuple[str, str | bytes], ...]
MetadataType: TypeAlias = "grpc.aio.Metadata | Sequence[tuple[str, str | bytes]]"
Resolve: TypeAlias = Callable[[grpc.HandlerCallDetails], Awaitable["grpc.RpcMethodHandler[Any, Any] | None"]]

_CLOSED_DETAILS = "the in-process channel is closed"


class CallDetails(grpc.HandlerCallDetails):
    """What a server's interceptors and generic handlers see of a call."""

    __slots__ = ("invocation_metadata", "method")

    def __init__(self, method: str, invocation_metadata: Metadata) -> None:
        self.method = method
        self.invocation_metadata = invocation_metadata


def resolver(
    interceptors: Sequence[grpc.aio.ServerInterceptor], handlers: Iterable[grpc.GenericRpcHandler]
) -> Resolve:
    """A call's handler as a grpc.aio server finds it: through ``interceptors`` in order, the last
    continuation asking each generic handler in turn (None: no such method)."""
    generic = list(handlers)

    async def find(details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        for handler in generic:
            found = handler.service(details)
            if found is not None:
                return found
        return None

    def chain(index: int) -> Resolve:
        if index == len(interceptors):
            return find
        interceptor, following = interceptors[index], chain(index + 1)

        async def intercepted(details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
            return await interceptor.intercept_service(following, details)

        return intercepted

    return chain(0)


class LocalContext(grpc.aio.ServicerContext[Any, Any]):
    """The servicer context of an in-process call: its metadata, deadline and final status. Nothing is
    sent before the end of a unary call, so initial metadata and compression settings have no effect."""

    def __init__(self, metadata: Metadata, deadline: float | None) -> None:
        self._metadata = metadata
        self._deadline = deadline
        self._code: grpc.StatusCode | None = None
        self._details: str | None = None
        self._trailing: Metadata = ()

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: MetadataType = ()
    ) -> Any:
        if code == grpc.StatusCode.OK:
            raise ValueError("abort with status OK is not allowed")
        self._code, self._details = code, details
        self._trailing = tuple(trailing_metadata) or self._trailing
        raise grpc.aio.AbortError()

    async def abort_with_status(self, status: grpc.Status) -> Any:
        await self.abort(status.code, status.details, status.trailing_metadata)

    def code(self) -> grpc.StatusCode | None:  # type: ignore[override]
        return self._code

    def details(self) -> str | None:  # type: ignore[override]
        return self._details

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def set_trailing_metadata(self, trailing_metadata: MetadataType) -> None:
        self._trailing = tuple(trailing_metadata)

    def trailing_metadata(self) -> Metadata:  # type: ignore[override]
        return self._trailing

    def invocation_metadata(self) -> Metadata:  # type: ignore[override]
        return self._metadata

    def time_remaining(self) -> float | None:  # type: ignore[override]
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def peer(self) -> str:
        return "local:"

    def peer_identities(self) -> None:
        return None

    def peer_identity_key(self) -> None:
        return None

    def auth_context(self) -> dict[str, Any]:
        return {}

    async def send_initial_metadata(self, initial_metadata: MetadataType) -> None:
        """Nothing goes out before the answer of a unary call; the caller gets no initial metadata."""

    def set_compression(self, compression: grpc.Compression) -> None:
        """Nothing is compressed in-process."""

    def disable_next_message_compression(self) -> None:
        """Nothing is compressed in-process."""

    async def read(self) -> Any:
        raise RuntimeError("a unary call has no request stream to read")

    async def write(self, message: Any) -> None:
        raise RuntimeError("a unary call has no answer stream to write")


class LocalCallError(grpc.aio.AioRpcError):
    """How an in-process call fails: the ``AioRpcError`` a real channel raises, of a type of its own so that
    a handler's own ``AioRpcError`` (a failed call it made) is not taken for its call's status."""


def _error(code: grpc.StatusCode, details: str | None, trailing: Metadata = ()) -> LocalCallError:
    return LocalCallError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details=details, debug_error_string=None
    )


def _retrieved(call: asyncio.Future[Any]) -> None:
    """Marks the outcome of a call that nobody waits for any more (its deadline passed, its caller was
    cancelled) as seen, so that asyncio does not log it."""
    if not call.cancelled():
        call.exception()


class LocalUnaryUnary:
    """One unary method of a :class:`LocalChannel`, called like ``grpc.aio.UnaryUnaryMultiCallable``."""

    def __init__(
        self,
        channel: LocalChannel,
        method: str,
        response_deserializer: Callable[[bytes], Any] | None,
    ) -> None:
        self._channel = channel
        self._method = method
        self._response_deserializer = response_deserializer

    async def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str | bytes]] | None = None,
        **_options: Any,
    ) -> Any:
        channel = self._channel
        if channel.closed:
            raise _error(grpc.StatusCode.UNAVAILABLE, _CLOSED_DETAILS)
        size = request.ByteSize()
        if size > channel.max_message_bytes:
            raise _error(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"CLIENT: Sent message larger than max ({size} vs. {channel.max_message_bytes})",
            )
        invocation = tuple(metadata or ())
        deadline = None if timeout is None else time.monotonic() + timeout
        context = LocalContext(invocation, deadline)
        # A task of its own, as grpc.aio runs a call: what the interceptors decide for this call (its
        # admission, a context variable) stays the call's, and the deadline can cancel it.
        call = asyncio.ensure_future(self._run(request, context, CallDetails(self._method, invocation)))
        call.add_done_callback(_retrieved)
        try:
            done, _ = await asyncio.wait((call,), timeout=timeout)
        except asyncio.CancelledError:
            call.cancel()
            raise
        if not done:
            call.cancel()
            raise _error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        if call.cancelled():  # the handler cancelled itself, as the server's cancellation would end it
            raise _error(grpc.StatusCode.CANCELLED, "Cancelled")
        response = call.result()
        if response.__class__ is bytes and self._response_deserializer is not None:
            # A handler may answer with the message already serialized (sightd.grpc.wrapping).
            return self._response_deserializer(response)
        return response

    async def _run(self, request: Any, context: LocalContext, details: CallDetails) -> Any:
        try:
            handler = await self._channel.resolve(details)
            if handler is None:
                raise _error(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
            if handler.request_streaming or handler.response_streaming or handler.unary_unary is None:
                raise _error(grpc.StatusCode.UNIMPLEMENTED, f"{self._method} is not a unary method")
            response = await handler.unary_unary(request, context)  # type: ignore[arg-type]
        except LocalCallError:
            raise
        except grpc.aio.AbortError:
            raise _error(
                context.code() or grpc.StatusCode.UNKNOWN, context.details(), context.trailing_metadata()
            ) from None
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # An interceptor's or the handler's: grpc.aio's server answers both alike.
            log.exception(
                "Unexpected [%s] raised by servicer method [%s] (in-process call)",
                type(error).__name__,
                self._method,
            )
            raise _error(grpc.StatusCode.UNKNOWN, f"Unexpected {type(error)}: {error}") from None
        code = context.code()
        if code is not None and code != grpc.StatusCode.OK:
            raise _error(code, context.details(), context.trailing_metadata())
        if response is None:
            raise _error(grpc.StatusCode.INTERNAL, f"the handler of {self._method} answered nothing")
        return response


class LocalChannel(grpc.aio.Channel):
    """A ``grpc.aio.Channel`` for generated stubs (see the module's docstring): unary-unary methods are
    served in-process by ``resolve``'s handlers; the other kinds go ``through`` a real channel to the same
    server, which also answers for the channel's state, and which :meth:`close` closes too."""

    def __init__(self, resolve: Resolve, through: grpc.aio.Channel, *, max_message_bytes: int) -> None:
        self.resolve = resolve
        self.max_message_bytes = max_message_bytes
        self.closed = False
        self._through = through

    def unary_unary(  # type: ignore[override]
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool | None = False,
    ) -> LocalUnaryUnary:
        return LocalUnaryUnary(self, method, response_deserializer)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._through.unary_stream(method, *args, **kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._through.stream_unary(method, *args, **kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._through.stream_stream(method, *args, **kwargs)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self._through.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self._through.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self._through.channel_ready()

    async def __aenter__(self) -> LocalChannel:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self, grace: float | None = None) -> None:
        """Refuses new in-process calls (UNAVAILABLE) and closes the real channel."""
        self.closed = True
        await self._through.close(grace)
