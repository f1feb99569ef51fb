"""Public resources (the model zoo): created or brought up to date at start-up, never through the API.

Each function makes the public row named ``public_id`` equal to what it is given, creating it when missing
and changing it in place otherwise, so that a rebuilt or upgraded zoo replaces its predecessor while the
names (and the versions already answered) stay valid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from sightd.store import networks as network_store
from sightd.store import recognition as recognition_store
from sightd.store import scoping
from sightd.store.blobs import BlobInfo
from sightd.store.database import utcnow
from sightd.store.networks import NetworkRecord
from sightd.store.recognition import SpecRecord, VersionRecord
from sightd.store.schema import blobs, network_files, networks, specs, versions

# Serialises replicas registering the zoo at the same time on one PostgreSQL database.
_REGISTRATION_LOCK = 0x5167_6874_6401


async def lock_registration(connection: AsyncConnection) -> None:
    """Held until the transaction ends (PostgreSQL; SQLite write transactions are exclusive anyway)."""
    if connection.dialect.name == "postgresql":
        await connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _REGISTRATION_LOCK})


async def put_network(
    connection: AsyncConnection,
    public_id: str,
    *,
    name: str,
    description: str,
    framework: str,
    preprocessing: Mapping[str, Any],
    files: Mapping[str, BlobInfo],
) -> tuple[NetworkRecord, list[str]]:
    """The public network, created or updated; also returns the SHA-256 of blobs no network uses any
    more (to delete after the commit)."""
    row_id = await connection.scalar(sa.select(networks.c.id).where(networks.c.public_id == public_id))
    if row_id is None:
        record = await network_store.create_network(
            connection,
            None,
            public_id=public_id,
            name=name,
            description=description,
            framework=framework,
            preprocessing=preprocessing,
            files=files,
        )
        return record, []
    current = await network_store.get_network_by_row_id(connection, 0, row_id)
    files_changed = sorted((f.field_name, f.sha256) for f in current.files) != sorted(
        (field, b.sha256) for field, b in files.items()
    )
    unused: list[str] = []
    if files_changed:
        now = utcnow()
        await connection.execute(
            scoping.insert_ignoring_duplicates(
                connection,
                blobs,
                [{"sha256": b.sha256, "size": b.size, "created_at": now} for b in files.values()],
            )
        )
        await connection.execute(sa.delete(network_files).where(network_files.c.network_id == row_id))
        await connection.execute(
            sa.insert(network_files),
            [
                {"network_id": row_id, "field_name": field, "sha256": b.sha256, "size": b.size}
                for field, b in files.items()
            ],
        )
        unused = await network_store.drop_unused_blobs(connection, [f.sha256 for f in current.files])
    fields = {
        "name": name,
        "description": description,
        "framework": framework,
        "preprocessing": dict(preprocessing),
    }
    if files_changed or any(getattr(current, key) != value for key, value in fields.items()):
        await connection.execute(
            sa.update(networks).where(networks.c.id == row_id).values(**fields, updated_at=utcnow())
        )
    return await network_store.get_network_by_row_id(connection, 0, row_id), unused


async def put_spec(
    connection: AsyncConnection,
    public_id: str,
    *,
    name: str,
    description: str,
    outputs: Sequence[Mapping[str, Any]],
) -> SpecRecord:
    """The public spec, created or updated."""
    row_id = await connection.scalar(sa.select(specs.c.id).where(specs.c.public_id == public_id))
    if row_id is None:
        return await recognition_store.create_spec(
            connection, None, public_id=public_id, name=name, description=description, outputs=outputs
        )
    current = await recognition_store.get_spec(connection, 0, public_id)
    if (current.name, current.description, current.outputs) != (
        name,
        description,
        [dict(o) for o in outputs],
    ):
        await connection.execute(
            sa.update(specs)
            .where(specs.c.id == row_id)
            .values(
                name=name, description=description, outputs=[dict(o) for o in outputs], updated_at=utcnow()
            )
        )
    return await recognition_store.get_spec(connection, 0, public_id)


async def put_current_version(
    connection: AsyncConnection,
    spec: SpecRecord,
    network: NetworkRecord,
    post_processings: Sequence[Mapping[str, Any]],
) -> VersionRecord:
    """The public spec's version running this network with these post-processings, created unless it
    exists, and made the spec's current version."""
    wanted = [dict(p) for p in post_processings]
    rows = await connection.execute(
        sa.select(versions.c.id, versions.c.post_processings).where(
            versions.c.spec_id == spec.row_id, versions.c.network_id == network.row_id
        )
    )
    version_id = next((row.id for row in rows if row.post_processings == wanted), None)
    if version_id is None:
        created = await recognition_store.create_version(
            connection, None, spec_row_id=spec.row_id, network_row_id=network.row_id, post_processings=wanted
        )
        version_id = created.id
    if spec.current_version_id != version_id:
        await connection.execute(
            sa.update(specs).where(specs.c.id == spec.row_id).values(current_version_id=version_id)
        )
    return await recognition_store.get_version(connection, 0, version_id)
