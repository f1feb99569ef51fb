"""Recognition specs and versions.

A version belongs to the spec's owner; versions of public specs are public. A spec's
``current_version_id`` must name one of its own versions; deleting that version clears it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from sightd.app.errors import AlreadyExistsError, BadRequestError, FieldViolation, NotFoundError, quoted
from sightd.store import scoping
from sightd.store.database import aware, utcnow
from sightd.store.schema import networks, specs, versions

SPEC_MUTABLE_FIELDS = ("name", "description", "metadata", "current_version_id")


@dataclass(frozen=True)
class SpecRecord:
    """A stored spec."""

    id: str  # as clients name it: decimal, or the public name
    row_id: int
    tenant_id: int | None
    name: str
    description: str
    metadata: dict[str, Any]
    outputs: list[dict[str, Any]]
    current_version_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def public(self) -> bool:
        return self.tenant_id is None


@dataclass(frozen=True)
class VersionRecord:
    """A stored version, with the client ids of its spec and network."""

    id: int
    tenant_id: int | None
    spec_id: str
    spec_row_id: int
    network_id: str
    network_row_id: int
    post_processings: list[dict[str, Any]]
    created_at: dt.datetime

    @property
    def public(self) -> bool:
        return self.tenant_id is None


def _spec(row: Any) -> SpecRecord:
    return SpecRecord(
        id=scoping.external_id(row),
        row_id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        description=row.description,
        metadata=row.metadata,
        outputs=row.outputs,
        current_version_id=row.current_version_id,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
    )


async def create_spec(
    connection: AsyncConnection,
    tenant_id: int | None,
    *,
    name: str,
    outputs: Sequence[Mapping[str, Any]],
    description: str = "",
    metadata: Mapping[str, Any] | None = None,
    public_id: str | None = None,
) -> SpecRecord:
    """Stores a spec. ``tenant_id`` None with a ``public_id`` makes a public spec (the model zoo)."""
    if not name:
        raise BadRequestError.of("name", "is required")
    if not outputs:
        raise BadRequestError.of("outputs", "a spec has at least one output")
    if (tenant_id is None) != (public_id is not None):
        raise ValueError("public specs have a public_id and no tenant, private ones the opposite")
    if public_id is not None:
        scoping.check_public_name(public_id)
        if await connection.scalar(sa.select(specs.c.id).where(specs.c.public_id == public_id)) is not None:
            raise AlreadyExistsError(f"public spec {public_id!r} exists already")
    now = utcnow()
    inserted = await connection.execute(
        sa.insert(specs)
        .values(
            tenant_id=tenant_id,
            public_id=public_id,
            name=name,
            description=description,
            metadata=dict(metadata or {}),
            outputs=[dict(o) for o in outputs],
            created_at=now,
            updated_at=now,
        )
        .returning(specs)
    )
    return _spec(inserted.one())


async def _spec_row(connection: AsyncConnection, tenant_id: int, ref: str) -> Any:
    parsed = scoping.parse_ref(ref, "recognition spec")
    row = (await connection.execute(sa.select(specs).where(scoping.by_ref(specs, tenant_id, parsed)))).first()
    if row is None:
        raise NotFoundError(f"recognition spec {quoted(ref)} not found", metadata={"spec_id": ref[:64]})
    return row


async def get_spec(connection: AsyncConnection, tenant_id: int, ref: str) -> SpecRecord:
    return _spec(await _spec_row(connection, tenant_id, ref))


async def list_specs(
    connection: AsyncConnection, tenant_id: int, *, public: bool, offset: int = 0, limit: int = 0
) -> tuple[int, list[SpecRecord]]:
    """The tenant's own specs, or the public ones, newest first: (count of all, this page)."""
    offset, limit = scoping.page(offset, limit)
    condition = specs.c.tenant_id.is_(None) if public else specs.c.tenant_id == tenant_id
    total = await scoping.count_where(connection, specs, condition)
    rows = await connection.execute(
        sa.select(specs).where(condition).order_by(specs.c.id.desc()).offset(offset).limit(limit)
    )
    return total, [_spec(row) for row in rows]


async def update_spec(
    connection: AsyncConnection, tenant_id: int, ref: str, changes: Mapping[str, Any]
) -> SpecRecord:
    """Changes name, description, metadata or current_version_id (None: no version) of a spec."""
    unknown = sorted(set(changes) - set(SPEC_MUTABLE_FIELDS))
    if unknown:
        raise BadRequestError(
            "only name, description, metadata and current_version_id of a spec can change",
            violations=[FieldViolation(field, "immutable or unknown field") for field in unknown],
        )
    if "name" in changes and not changes["name"]:
        raise BadRequestError.of("name", "is required")
    row = await _spec_row(connection, tenant_id, ref)
    scoping.ensure_owner(row.tenant_id, tenant_id, f"recognition spec {quoted(ref)}")
    version_id = changes.get("current_version_id")
    if version_id is not None:
        owner = await connection.scalar(sa.select(versions.c.spec_id).where(versions.c.id == version_id))
        if owner != row.id:
            raise BadRequestError.of("current_version_id", f"{version_id} is not a version of spec {ref}")
    if changes:
        await connection.execute(
            sa.update(specs).where(specs.c.id == row.id).values(**changes, updated_at=utcnow())
        )
    return await get_spec(connection, tenant_id, ref)


async def delete_spec(connection: AsyncConnection, tenant_id: int, ref: str) -> None:
    """Deletes one of the tenant's specs with its versions."""
    row = await _spec_row(connection, tenant_id, ref)
    scoping.ensure_owner(row.tenant_id, tenant_id, f"recognition spec {quoted(ref)}")
    await connection.execute(sa.delete(versions).where(versions.c.spec_id == row.id))
    await connection.execute(sa.delete(specs).where(specs.c.id == row.id))


def _select_versions() -> sa.Select[Any]:
    return (
        sa.select(
            versions,
            specs.c.public_id.label("spec_public_id"),
            specs.c.tenant_id.label("spec_tenant_id"),
            networks.c.public_id.label("network_public_id"),
            networks.c.tenant_id.label("network_tenant_id"),
        )
        .join(specs, specs.c.id == versions.c.spec_id)
        .join(networks, networks.c.id == versions.c.network_id)
    )


def _version(row: Any) -> VersionRecord:
    return VersionRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        spec_id=row.spec_public_id if row.spec_tenant_id is None else str(row.spec_id),
        spec_row_id=row.spec_id,
        network_id=row.network_public_id if row.network_tenant_id is None else str(row.network_id),
        network_row_id=row.network_id,
        post_processings=row.post_processings,
        created_at=aware(row.created_at),
    )


async def create_version(
    connection: AsyncConnection,
    tenant_id: int | None,
    *,
    spec_row_id: int,
    network_row_id: int,
    post_processings: Sequence[Mapping[str, Any]],
) -> VersionRecord:
    """Stores a version of a spec (resolved and authorised by the caller: see :func:`resolve_for_version`)."""
    inserted = await connection.execute(
        sa.insert(versions)
        .values(
            tenant_id=tenant_id,
            spec_id=spec_row_id,
            network_id=network_row_id,
            post_processings=[dict(p) for p in post_processings],
            created_at=utcnow(),
        )
        .returning(versions.c.id)
    )
    return await _get_version_row(connection, inserted.scalar_one())


async def resolve_for_version(
    connection: AsyncConnection, tenant_id: int, spec_ref: str, network_ref: str
) -> tuple[SpecRecord, int]:
    """The spec (one of the tenant's) and the network row id (one it sees) of a new version."""
    violations = []
    spec: SpecRecord | None = None
    network_row_id = 0
    try:
        spec = await get_spec(connection, tenant_id, spec_ref)
        scoping.ensure_owner(spec.tenant_id, tenant_id, f"recognition spec {quoted(spec_ref)}")
    except NotFoundError:
        violations.append(FieldViolation("spec_id", f"recognition spec {quoted(spec_ref)} not found"))
    try:
        parsed = scoping.parse_ref(network_ref, "network")
        found = await connection.scalar(
            sa.select(networks.c.id).where(scoping.by_ref(networks, tenant_id, parsed))
        )
        if found is None:
            raise NotFoundError("")
        network_row_id = int(found)
    except NotFoundError:
        violations.append(FieldViolation("network_id", f"network {quoted(network_ref)} not found"))
    if violations:
        raise NotFoundError("; ".join(v.description for v in violations), violations=violations)
    assert spec is not None
    return spec, network_row_id


async def _get_version_row(connection: AsyncConnection, version_id: int) -> VersionRecord:
    row = (await connection.execute(_select_versions().where(versions.c.id == version_id))).one()
    return _version(row)


async def get_version(connection: AsyncConnection, tenant_id: int, version_id: int) -> VersionRecord:
    row = (
        await connection.execute(
            _select_versions().where(versions.c.id == version_id, scoping.visible(versions, tenant_id))
        )
    ).first()
    if row is None:
        raise NotFoundError(
            f"recognition version {version_id} not found", metadata={"version_id": str(version_id)}
        )
    return _version(row)


async def list_versions(
    connection: AsyncConnection, tenant_id: int, *, offset: int = 0, limit: int = 0
) -> tuple[int, list[VersionRecord]]:
    """The tenant's own versions, newest first."""
    offset, limit = scoping.page(offset, limit)
    condition = versions.c.tenant_id == tenant_id
    total = await scoping.count_where(connection, versions, condition)
    rows = await connection.execute(
        _select_versions().where(condition).order_by(versions.c.id.desc()).offset(offset).limit(limit)
    )
    return total, [_version(row) for row in rows]


async def list_spec_versions(
    connection: AsyncConnection, tenant_id: int, spec_ref: str, *, offset: int = 0, limit: int = 0
) -> tuple[int, list[VersionRecord]]:
    """The versions of a spec the tenant sees, newest first."""
    offset, limit = scoping.page(offset, limit)
    spec = await _spec_row(connection, tenant_id, spec_ref)
    condition = versions.c.spec_id == spec.id
    total = await scoping.count_where(connection, versions, condition)
    rows = await connection.execute(
        _select_versions().where(condition).order_by(versions.c.id.desc()).offset(offset).limit(limit)
    )
    return total, [_version(row) for row in rows]


async def delete_version(connection: AsyncConnection, tenant_id: int, version_id: int) -> None:
    """Deletes one of the tenant's versions; a spec whose current version it was is left without one."""
    version = await get_version(connection, tenant_id, version_id)
    scoping.ensure_owner(version.tenant_id, tenant_id, f"recognition version {version_id}")
    await connection.execute(
        sa.update(specs).where(specs.c.current_version_id == version_id).values(current_version_id=None)
    )
    await connection.execute(sa.delete(versions).where(versions.c.id == version_id))
