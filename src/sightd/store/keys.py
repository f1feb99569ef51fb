"""Tenants and their API keys.

A generated key reads ``sd_<id>_<secret>``: ``id`` (8 base32 characters) finds the row, ``secret`` (40
base32 characters, 200 bits) makes it unguessable. Only the SHA-256 of the whole key is stored; a slow
password hash is pointless for a random 200-bit secret. A key chosen by the operator
(``SIGHTD_API_KEY``) has its id derived from its hash. Comparisons are constant-time.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from sightd.store.database import aware, utcnow
from sightd.store.schema import api_keys, tenants

KEY_PATTERN = re.compile(r"sd_([a-z2-7]{8})_([a-z2-7]{40})")
MIN_KEY_LENGTH = 16
DEFAULT_TENANT = "default"


class ApiKeyError(ValueError):
    """A key that cannot be used (too short) or an unknown key id."""


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never its secret)."""

    id: str
    tenant_id: int
    tenant: str
    name: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


def generate_key() -> str:
    return f"sd_{_b32(secrets.token_bytes(5))}_{_b32(secrets.token_bytes(25))}"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id(key: str) -> str:
    """The lookup id of a key: its own for generated keys, derived from its hash otherwise."""
    match = KEY_PATTERN.fullmatch(key)
    if match:
        return match.group(1)
    return _b32(hashlib.sha256(key.encode()).digest())[:8]


async def ensure_tenant(connection: AsyncConnection, name: str) -> int:
    found = await connection.scalar(sa.select(tenants.c.id).where(tenants.c.name == name))
    if found is not None:
        return int(found)
    inserted = await connection.execute(
        sa.insert(tenants).values(name=name, created_at=utcnow()).returning(tenants.c.id)
    )
    return int(inserted.scalar_one())


async def create_key(
    connection: AsyncConnection, *, tenant: str = DEFAULT_TENANT, name: str = "", key: str | None = None
) -> tuple[ApiKey, str]:
    """Stores a new key for the tenant (created if needed); returns it with its plaintext, shown once."""
    plaintext = key if key is not None else generate_key()
    if len(plaintext) < MIN_KEY_LENGTH or not plaintext.isprintable() or " " in plaintext:
        raise ApiKeyError(f"an API key has at least {MIN_KEY_LENGTH} printable characters and no spaces")
    lookup = key_id(plaintext)
    if await connection.scalar(sa.select(api_keys.c.id).where(api_keys.c.prefix == lookup)) is not None:
        raise ApiKeyError(f"a key with id {lookup} exists already")
    tenant_id = await ensure_tenant(connection, tenant)
    created = utcnow()
    await connection.execute(
        sa.insert(api_keys).values(
            tenant_id=tenant_id, prefix=lookup, secret_hash=key_hash(plaintext), name=name, created_at=created
        )
    )
    return ApiKey(lookup, tenant_id, tenant, name, created, None), plaintext


def _select_keys() -> sa.Select[str, int, str, str, dt.datetime, dt.datetime | None]:
    return (
        sa.select(
            api_keys.c.prefix,
            api_keys.c.tenant_id,
            tenants.c.name,
            api_keys.c.name,
            api_keys.c.created_at,
            api_keys.c.revoked_at,
        )
        .join(tenants, tenants.c.id == api_keys.c.tenant_id)
        .order_by(api_keys.c.id)
    )


async def list_keys(connection: AsyncConnection) -> list[ApiKey]:
    rows = await connection.execute(_select_keys())
    return [
        ApiKey(prefix, tenant_id, tenant, name, aware(created), aware(revoked) if revoked else None)
        for prefix, tenant_id, tenant, name, created, revoked in rows
    ]


async def revoke_key(connection: AsyncConnection, lookup: str) -> None:
    """Revokes a key by id; revoking a revoked key changes nothing."""
    result = await connection.execute(
        sa.update(api_keys)
        .where(api_keys.c.prefix == lookup, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if result.rowcount == 0:
        exists = await connection.scalar(sa.select(api_keys.c.id).where(api_keys.c.prefix == lookup))
        if exists is None:
            raise ApiKeyError(f"no API key with id {lookup!r}")


async def authenticate(connection: AsyncConnection, key: str) -> int | None:
    """The tenant of a valid, unrevoked key; None for anything else."""
    if not key or len(key) > 512:
        return None
    row = (
        await connection.execute(
            sa.select(api_keys.c.tenant_id, api_keys.c.secret_hash, api_keys.c.revoked_at).where(
                api_keys.c.prefix == key_id(key)
            )
        )
    ).first()
    if row is None:
        # Hash anyway so that unknown ids and wrong secrets take the same time.
        hmac.compare_digest(key_hash(key), "0" * 64)
        return None
    tenant_id, stored_hash, revoked_at = row
    if not hmac.compare_digest(key_hash(key), stored_hash) or revoked_at is not None:
        return None
    return int(tenant_id)


async def has_keys(connection: AsyncConnection) -> bool:
    return await connection.scalar(sa.select(sa.func.count()).select_from(api_keys)) != 0


async def ensure_bootstrap_key(connection: AsyncConnection, configured: str = "") -> str | None:
    """First start: makes sure a key exists. With ``configured`` (SIGHTD_API_KEY) that key is made valid
    (and nothing is returned: the operator knows it); otherwise, when the store has no key at all, a
    random key is created and returned, to be printed once."""
    if configured:
        if await authenticate(connection, configured) is None:
            known = await connection.scalar(
                sa.select(api_keys.c.id).where(api_keys.c.prefix == key_id(configured))
            )
            if known is not None:
                raise ApiKeyError("the configured API key (SIGHTD_API_KEY) was revoked")
            await create_key(connection, name="SIGHTD_API_KEY", key=configured)
        return None
    if await has_keys(connection):
        return None
    _, plaintext = await create_key(connection, name="first start")
    return plaintext
