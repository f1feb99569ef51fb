"""The authentication interceptor: every call but health checks and reflection carries an API key, in
``x-api-key`` metadata or ``authorization: Bearer <key>``; the key's tenant is then available to the
servicer through :func:`current_tenant`.

A missing, unknown or revoked key is answered UNAUTHENTICATED with an ErrorInfo whose reason is
``API_KEY_MISSING`` or ``API_KEY_INVALID``. Valid keys are remembered for ``cache_seconds`` (a revoked key
keeps working that long at most) so that a call costs no database read.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc

from sightd.app.errors import UnauthenticatedError
from sightd.grpc.status import to_status
from sightd.grpc.wrapping import wrap_handler
from sightd.store.keys import key_hash

# Services that answer without a key: orchestrators probe health, tools list services by reflection.
PUBLIC_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
_MAX_CACHED = 10_000
_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")

_tenant: contextvars.ContextVar[int] = contextvars.ContextVar("sightd_tenant")


def current_tenant() -> int:
    """The tenant of the call being served (set by the interceptor)."""
    return _tenant.get()


def api_key_of(metadata: Sequence[tuple[str, str | bytes]] | None) -> str:
    """The key a call presents: ``x-api-key``, else an ``authorization`` Bearer token."""
    bearer = ""
    for name, value in metadata or ():
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        if name == "x-api-key":
            return text.strip()
        if name == "authorization":
            scheme, _, token = text.strip().partition(" ")
            if scheme.lower() == "bearer":
                bearer = token.strip()
    return bearer


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Maps the call's API key to its tenant; ``authenticate`` returns the tenant or None."""

    def __init__(
        self, authenticate: Callable[[str], Awaitable[int | None]], *, cache_seconds: float = 30.0
    ) -> None:
        self._authenticate = authenticate
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[int, float]] = {}

    async def _tenant_of(self, key: str) -> int | None:
        digest = key_hash(key)
        cached = self._cache.get(digest)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        tenant = await self._authenticate(key)
        if tenant is not None:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[digest] = (tenant, now + self._cache_seconds)
        return tenant

    def forget(self) -> None:
        """Drops remembered keys (after a revocation in this process)."""
        self._cache.clear()

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[_Req, _Resp] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Req, _Resp] | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(PUBLIC_SERVICES):
            return handler
        key = api_key_of(handler_call_details.invocation_metadata)
        tenant = await self._tenant_of(key) if key else None
        if tenant is None:
            error = (
                UnauthenticatedError(
                    "an API key is required (x-api-key or authorization: Bearer)", reason="API_KEY_MISSING"
                )
                if not key
                else UnauthenticatedError("the API key is unknown or revoked", reason="API_KEY_INVALID")
            )

            @contextlib.asynccontextmanager
            async def refuse(context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
                await context.abort_with_status(to_status(error))
                yield  # never reached: abort raises

            return wrap_handler(handler, refuse)

        @contextlib.asynccontextmanager
        async def enter(_context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
            _tenant.set(tenant)
            yield

        return wrap_handler(handler, enter)
