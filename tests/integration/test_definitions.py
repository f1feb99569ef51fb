"""Definitions: what the runtime runs, looked up in a real store (SQLite and PostgreSQL) with the zoo
registered. Concurrent requests for one definition share a lookup; a change forgets what was remembered
and what was being looked up."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from sightd.app import public_models
from sightd.app.definitions import Definitions
from sightd.app.errors import NotFoundError
from sightd.runtime import Runtime
from sightd.store import keys
from sightd.store.blobs import BlobStore
from sightd.store.database import Database
from sightd.zoo import installed


class Statements:
    """Counts the statements the store runs (SQLAlchemy's cursor event)."""

    def __init__(self, database: Database) -> None:
        self.count = 0
        self._engine = database.engine.sync_engine
        event.listen(self._engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: Any) -> None:
        self.count += 1

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._seen)


async def _setup(database: Database, tmp_path: Path, zoo: installed.Zoo) -> tuple[Definitions, int]:
    blobs = BlobStore(tmp_path / "blobs")
    await public_models.register(database, blobs, zoo)
    async with database.write() as connection:
        tenant = await keys.ensure_tenant(connection, "acme")
    return Definitions(database, blobs, Runtime(), ttl=60.0), tenant


async def test_concurrent_lookups_of_one_definition_share_one(
    database: Database, tmp_path: Path, zoo: installed.Zoo
) -> None:
    definitions, tenant = await _setup(database, tmp_path, zoo)
    statements = Statements(database)
    try:
        alone = await definitions.version(tenant, spec_id="imagenet-mobilenet-v2")
        one_lookup = statements.count
        assert one_lookup > 0
        definitions.forget()
        statements.count = 0
        found = await asyncio.gather(
            *(definitions.version(tenant, spec_id="imagenet-mobilenet-v2") for _ in range(16))
        )
        assert statements.count == one_lookup  # not 16 times as many
        assert all(definition == alone for definition in found)
        statements.count = 0
        await definitions.version(tenant, spec_id="imagenet-mobilenet-v2")
        assert statements.count == 0  # remembered
        net = await asyncio.gather(*(definitions.network(tenant, "coco-yolov3-tiny") for _ in range(8)))
        assert len({definition.key for definition in net}) == 1
        network_lookup = statements.count
        statements.count = 0
        await definitions.network(tenant, "coco-yolov3-tiny")
        assert statements.count == 0 < network_lookup
    finally:
        statements.close()


async def test_a_failed_lookup_fails_every_waiter_and_is_not_remembered(
    database: Database, tmp_path: Path, zoo: installed.Zoo
) -> None:
    definitions, tenant = await _setup(database, tmp_path, zoo)
    outcomes = await asyncio.gather(
        *(definitions.version(tenant, spec_id="no-such-spec") for _ in range(4)), return_exceptions=True
    )
    assert all(isinstance(outcome, NotFoundError) for outcome in outcomes)
    with pytest.raises(NotFoundError):
        await definitions.version(tenant, spec_id="no-such-spec")


async def test_a_cancelled_waiter_leaves_the_shared_lookup_running(
    database: Database, tmp_path: Path, zoo: installed.Zoo
) -> None:
    definitions, tenant = await _setup(database, tmp_path, zoo)
    first = asyncio.ensure_future(definitions.version(tenant, spec_id="coco-yolov3-tiny"))
    second = asyncio.ensure_future(definitions.version(tenant, spec_id="coco-yolov3-tiny"))
    await asyncio.sleep(0)
    first.cancel()
    definition = await second
    assert definition.key.startswith("version:")
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_change_during_a_lookup_is_not_hidden_by_it(
    database: Database, tmp_path: Path, zoo: installed.Zoo
) -> None:
    definitions, tenant = await _setup(database, tmp_path, zoo)
    statements = Statements(database)
    try:
        early = asyncio.ensure_future(definitions.version(tenant, spec_id="imagenet-mobilenet-v2"))
        await asyncio.sleep(0)  # the lookup has started
        definitions.forget()  # something was written meanwhile
        late = await definitions.version(tenant, spec_id="imagenet-mobilenet-v2")  # a lookup of its own
        assert (await early) == late
        statements.count = 0
        await definitions.version(tenant, spec_id="imagenet-mobilenet-v2")
        assert statements.count == 0  # the later lookup is remembered
    finally:
        statements.close()
