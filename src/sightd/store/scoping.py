"""Tenancy rules shared by the repositories.

A tenant sees its own rows and the public ones (``tenant_id`` NULL); it changes only its own. Private
networks and specs are named by their decimal id, public ones by their name; anything a tenant may not
see is reported exactly like something that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from sightd.app.errors import BadRequestError, NotFoundError, PermissionDeniedError, quoted

PUBLIC_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,199}")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def parse_ref(ref: str, kind: str) -> int | str:
    """The private id (int) or public name (str) a client's reference names."""
    if ref.isdigit() and ref.isascii() and len(ref) <= 18:
        return int(ref)
    if PUBLIC_NAME.fullmatch(ref):
        return ref
    raise NotFoundError(f"{kind} {quoted(ref)} not found")


def check_public_name(name: str) -> str:
    """Public names are slugs with at least one non-digit, so they never read as a private id."""
    if not PUBLIC_NAME.fullmatch(name) or name.isdigit():
        raise BadRequestError.of(
            "id", "a public name is lowercase letters, digits, '.', '_' or '-', not digits only"
        )
    return name


def visible(table: sa.Table, tenant_id: int) -> sa.ColumnElement[bool]:
    return sa.or_(table.c.tenant_id == tenant_id, table.c.tenant_id.is_(None))


def by_ref(table: sa.Table, tenant_id: int, ref: int | str) -> sa.ColumnElement[bool]:
    """The row a reference names, among those the tenant sees."""
    if isinstance(ref, int):
        return sa.and_(table.c.id == ref, table.c.tenant_id == tenant_id)
    return sa.and_(table.c.public_id == ref, table.c.tenant_id.is_(None))


def external_id(row: Any) -> str:
    """The id clients use: the public name, or the decimal id."""
    return str(row.public_id) if row.tenant_id is None else str(row.id)


def ensure_owner(owner: int | None, tenant_id: int, what: str) -> None:
    """Public rows (the only others a tenant sees) are read-only for tenants."""
    if owner != tenant_id:
        raise PermissionDeniedError(f"{what} is public and read-only")


def page(offset: int, limit: int) -> tuple[int, int]:
    """Validated offset and limit (0: the default page size)."""
    if offset < 0:
        raise BadRequestError.of("offset", "must not be negative")
    if limit < 0 or limit > MAX_LIMIT:
        raise BadRequestError.of("limit", f"must be between 0 and {MAX_LIMIT}")
    return offset, limit or DEFAULT_LIMIT


async def count_where(connection: AsyncConnection, table: sa.Table, condition: sa.ColumnElement[bool]) -> int:
    total = await connection.scalar(sa.select(sa.func.count()).select_from(table).where(condition))
    return int(total or 0)


def insert_ignoring_duplicates(
    connection: AsyncConnection, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> sa.Executable:
    """INSERT ... ON CONFLICT DO NOTHING, in the dialect of the connection."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table).values(list(rows)).on_conflict_do_nothing()
    return sqlite.insert(table).values(list(rows)).on_conflict_do_nothing()
