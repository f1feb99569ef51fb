"""Authentication of calls: every call but health checks and reflection carries an API key, in
``x-api-key`` metadata or ``authorization: Bearer <key>``; the key's tenant is then available to the
servicer through :func:`current_tenant`. The server's interceptor (``sightd.grpc.server``) asks
:class:`Authenticator` for each call's admission.

A missing, unknown or revoked key is answered UNAUTHENTICATED with an ErrorInfo whose reason is
``API_KEY_MISSING`` or ``API_KEY_INVALID``. Valid keys are remembered for ``cache_seconds`` (a revoked key
keeps working that long at most) so that a call costs no database read, and the calls that present the
same key while it is being looked up share one read. A lookup that fails or refuses the key is not
remembered; :meth:`Authenticator.forget` (after a revocation in this process) drops what was remembered and
what was being looked up.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from sightd.app.errors import UnauthenticatedError, UnavailableError
from sightd.grpc.status import to_status
from sightd.grpc.wrapping import Refusal, admission
from sightd.remembered import RememberedLookups

# Services that answer without a key: orchestrators probe health, tools list services by reflection.
PUBLIC_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
_MAX_CACHED = 10_000

KEY_MISSING = Refusal(
    to_status(
        UnauthenticatedError(
            "an API key is required (x-api-key or authorization: Bearer)", reason="API_KEY_MISSING"
        )
    )
)
KEY_INVALID = Refusal(
    to_status(UnauthenticatedError("the API key is unknown or revoked", reason="API_KEY_INVALID"))
)
KEYS_UNAVAILABLE = Refusal(
    to_status(
        UnavailableError(
            "the API key could not be checked (the store did not answer); retry in a moment",
            reason="KEY_STORE_UNAVAILABLE",
            retry_after=1.0,
        )
    )
)
log = logging.getLogger(__name__)


def current_tenant() -> int:
    """The tenant of the call being served (set by the server's interceptor)."""
    admitted = admission.get()
    if isinstance(admitted, Refusal):
        raise LookupError("the call was refused: it has no tenant")
    return admitted


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


class Authenticator:
    """Maps API keys to tenants; ``authenticate`` returns the tenant or None (unknown or revoked)."""

    def __init__(
        self, authenticate: Callable[[str], Awaitable[int | None]], *, cache_seconds: float = 30.0
    ) -> None:
        self._authenticate = authenticate
        # Valid keys by the key itself (no hash per call): the dict compares a presented key with a
        # remembered one only when their string hashes (salted per process) are equal, so the time a
        # lookup takes tells nothing of the remembered keys' characters.
        self._remembered: RememberedLookups[str, int | None] = RememberedLookups(
            cache_seconds, _MAX_CACHED, keep=lambda tenant: tenant is not None
        )

    def admission(self, metadata: Sequence[tuple[str, str | bytes]]) -> int | Refusal | str:
        """A call's admission without waiting: its key's remembered tenant, or the refusal of a missing
        key; otherwise the key, which :meth:`admit` looks up."""
        key = api_key_of(metadata)
        if not key:
            return KEY_MISSING
        tenant = self._remembered.recall(key)
        return key if tenant is None else tenant

    async def admit(self, key: str) -> int | Refusal:
        """The tenant of a key that is not remembered, or the refusal of an unknown or revoked one, or
        UNAVAILABLE when the lookup failed (the store's error is logged, not shown to the caller)."""
        try:
            tenant = await self.tenant_of(key)
        except Exception:
            log.exception("an API key lookup failed")
            return KEYS_UNAVAILABLE
        return KEY_INVALID if tenant is None else tenant

    async def tenant_of(self, key: str) -> int | None:
        """The key's tenant (None: unknown or revoked): remembered, or looked up once for every caller
        asking meanwhile (sightd.remembered)."""
        return await self._remembered.get(key, lambda: self._authenticate(key))

    def forget(self) -> None:
        """Drops remembered keys, and the lookups in progress (after a revocation in this process)."""
        self._remembered.forget()
