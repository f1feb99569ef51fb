"""Networks and their files (the files' bytes live in the blob folder, see ``blobs``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from sightd.app.errors import AlreadyExistsError, BadRequestError, FieldViolation, NotFoundError, quoted
from sightd.store import scoping
from sightd.store.blobs import BlobInfo
from sightd.store.database import aware, utcnow
from sightd.store.schema import blobs, network_files, networks, specs, versions

MUTABLE_FIELDS = ("name", "description", "metadata")


@dataclass(frozen=True)
class NetworkFile:
    field_name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class NetworkRecord:
    """A stored network."""

    id: str  # as clients name it: decimal, or the public name
    row_id: int
    tenant_id: int | None
    name: str
    description: str
    metadata: dict[str, Any]
    framework: str
    preprocessing: dict[str, Any]
    postprocessings: list[dict[str, Any]]
    files: tuple[NetworkFile, ...]
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def public(self) -> bool:
        return self.tenant_id is None


async def _files(connection: AsyncConnection, network_ids: Sequence[int]) -> dict[int, list[NetworkFile]]:
    found: dict[int, list[NetworkFile]] = {network_id: [] for network_id in network_ids}
    if network_ids:
        rows = await connection.execute(
            sa.select(network_files)
            .where(network_files.c.network_id.in_(network_ids))
            .order_by(network_files.c.field_name)
        )
        for row in rows:
            found[row.network_id].append(NetworkFile(row.field_name, row.sha256, row.size))
    return found


def _record(row: Any, files: Sequence[NetworkFile]) -> NetworkRecord:
    return NetworkRecord(
        id=scoping.external_id(row),
        row_id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        description=row.description,
        metadata=row.metadata,
        framework=row.framework,
        preprocessing=row.preprocessing,
        postprocessings=row.postprocessings,
        files=tuple(files),
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
    )


async def create_network(
    connection: AsyncConnection,
    tenant_id: int | None,
    *,
    name: str,
    framework: str,
    preprocessing: Mapping[str, Any],
    description: str = "",
    metadata: Mapping[str, Any] | None = None,
    postprocessings: Sequence[Mapping[str, Any]] = (),
    files: Mapping[str, BlobInfo] | None = None,
    public_id: str | None = None,
) -> NetworkRecord:
    """Stores a network whose files are already in the blob folder. ``tenant_id`` None with a
    ``public_id`` makes a public network (the model zoo)."""
    if not name:
        raise BadRequestError.of("name", "is required")
    if (tenant_id is None) != (public_id is not None):
        raise ValueError("public networks have a public_id and no tenant, private ones the opposite")
    if public_id is not None:
        scoping.check_public_name(public_id)
        taken = await connection.scalar(sa.select(networks.c.id).where(networks.c.public_id == public_id))
        if taken is not None:
            raise AlreadyExistsError(f"public network {public_id!r} exists already")
    now = utcnow()
    inserted = await connection.execute(
        sa.insert(networks)
        .values(
            tenant_id=tenant_id,
            public_id=public_id,
            name=name,
            description=description,
            metadata=dict(metadata or {}),
            framework=framework,
            preprocessing=dict(preprocessing),
            postprocessings=[dict(p) for p in postprocessings],
            created_at=now,
            updated_at=now,
        )
        .returning(networks)
    )
    row = inserted.one()
    files = dict(files or {})
    if files:
        await connection.execute(
            scoping.insert_ignoring_duplicates(
                connection,
                blobs,
                [{"sha256": b.sha256, "size": b.size, "created_at": now} for b in files.values()],
            )
        )
        await connection.execute(
            sa.insert(network_files),
            [
                {"network_id": row.id, "field_name": field, "sha256": b.sha256, "size": b.size}
                for field, b in files.items()
            ],
        )
    stored = sorted((NetworkFile(f, b.sha256, b.size) for f, b in files.items()), key=lambda f: f.field_name)
    return _record(row, stored)


async def _row(connection: AsyncConnection, tenant_id: int, ref: str) -> Any:
    parsed = scoping.parse_ref(ref, "network")
    row = (
        await connection.execute(sa.select(networks).where(scoping.by_ref(networks, tenant_id, parsed)))
    ).first()
    if row is None:
        raise NotFoundError(f"network {quoted(ref)} not found", metadata={"network_id": ref[:64]})
    return row


async def get_network(connection: AsyncConnection, tenant_id: int, ref: str) -> NetworkRecord:
    row = await _row(connection, tenant_id, ref)
    return _record(row, (await _files(connection, [row.id]))[row.id])


async def get_network_by_row_id(connection: AsyncConnection, tenant_id: int, row_id: int) -> NetworkRecord:
    """A network the tenant sees, by its row id (versions refer to networks that way)."""
    row = (
        await connection.execute(
            sa.select(networks).where(networks.c.id == row_id, scoping.visible(networks, tenant_id))
        )
    ).first()
    if row is None:
        raise NotFoundError(f"network {row_id} not found")
    return _record(row, (await _files(connection, [row.id]))[row.id])


async def list_networks(
    connection: AsyncConnection, tenant_id: int, *, public: bool, offset: int = 0, limit: int = 0
) -> tuple[int, list[NetworkRecord]]:
    """The tenant's own networks, or the public ones, newest first: (count of all, this page)."""
    offset, limit = scoping.page(offset, limit)
    condition = networks.c.tenant_id.is_(None) if public else networks.c.tenant_id == tenant_id
    total = await scoping.count_where(connection, networks, condition)
    rows = (
        await connection.execute(
            sa.select(networks).where(condition).order_by(networks.c.id.desc()).offset(offset).limit(limit)
        )
    ).all()
    files = await _files(connection, [row.id for row in rows])
    return total, [_record(row, files[row.id]) for row in rows]


async def update_network(
    connection: AsyncConnection, tenant_id: int, ref: str, changes: Mapping[str, Any]
) -> NetworkRecord:
    """Changes name, description or metadata of one of the tenant's networks."""
    unknown = sorted(set(changes) - set(MUTABLE_FIELDS))
    if unknown:
        raise BadRequestError(
            "only name, description and metadata of a network can change",
            violations=[FieldViolation(field, "immutable or unknown field") for field in unknown],
        )
    if "name" in changes and not changes["name"]:
        raise BadRequestError.of("name", "is required")
    row = await _row(connection, tenant_id, ref)
    scoping.ensure_owner(row.tenant_id, tenant_id, f"network {quoted(ref)}")
    if changes:
        await connection.execute(
            sa.update(networks).where(networks.c.id == row.id).values(**changes, updated_at=utcnow())
        )
    return await get_network(connection, tenant_id, ref)


async def delete_network(connection: AsyncConnection, tenant_id: int, ref: str) -> list[str]:
    """Deletes one of the tenant's networks (its versions go with it). Returns the SHA-256 of the blobs
    no network uses any more: delete their files once the transaction has committed."""
    row = await _row(connection, tenant_id, ref)
    scoping.ensure_owner(row.tenant_id, tenant_id, f"network {quoted(ref)}")
    hashes = [f.sha256 for f in (await _files(connection, [row.id]))[row.id]]
    # Versions go with the network (foreign key cascade); specs must not keep pointing at them.
    await connection.execute(
        sa.update(specs)
        .where(
            specs.c.current_version_id.in_(sa.select(versions.c.id).where(versions.c.network_id == row.id))
        )
        .values(current_version_id=None)
    )
    await connection.execute(sa.delete(network_files).where(network_files.c.network_id == row.id))
    await connection.execute(sa.delete(networks).where(networks.c.id == row.id))
    return await drop_unused_blobs(connection, hashes)


async def drop_unused_blobs(connection: AsyncConnection, hashes: Sequence[str]) -> list[str]:
    """Deletes the rows of the blobs among ``hashes`` that no network uses; returns their hashes."""
    if not hashes:
        return []
    still_used = set(
        (
            await connection.execute(
                sa.select(network_files.c.sha256).where(network_files.c.sha256.in_(hashes)).distinct()
            )
        ).scalars()
    )
    unused = sorted(set(hashes) - still_used)
    if unused:
        await connection.execute(sa.delete(blobs).where(blobs.c.sha256.in_(unused)))
    return unused
