"""API keys: stored hashed, found by id, compared in full, revocable; tenants own them."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from sightd.store import keys
from sightd.store.database import Database
from sightd.store.schema import api_keys


async def test_created_key_authenticates_its_tenant_and_only_its_hash_is_stored(database: Database) -> None:
    async with database.write() as connection:
        record, plaintext = await keys.create_key(connection, tenant="acme", name="ci")
        other, other_plaintext = await keys.create_key(connection, tenant="globex")
    assert keys.KEY_PATTERN.fullmatch(plaintext)
    assert record.id == plaintext[3:11]
    async with database.read() as connection:
        assert await keys.authenticate(connection, plaintext) == record.tenant_id
        assert await keys.authenticate(connection, other_plaintext) == other.tenant_id
        assert record.tenant_id != other.tenant_id
        stored = (await connection.execute(sa.select(api_keys.c.secret_hash, api_keys.c.prefix))).all()
    assert {row.secret_hash for row in stored} == {
        hashlib.sha256(plaintext.encode()).hexdigest(),
        hashlib.sha256(other_plaintext.encode()).hexdigest(),
    }
    assert all(plaintext not in str(value) for row in stored for value in row)


async def test_a_key_with_a_known_id_but_a_wrong_secret_is_refused(database: Database) -> None:
    async with database.write() as connection:
        _, plaintext = await keys.create_key(connection)
    forged = plaintext[:-1] + ("a" if plaintext[-1] != "a" else "b")
    async with database.read() as connection:
        assert await keys.authenticate(connection, forged) is None
        assert await keys.authenticate(connection, "") is None
        assert await keys.authenticate(connection, "sd_nothing") is None


async def test_revoked_key_stops_authenticating(database: Database) -> None:
    async with database.write() as connection:
        record, plaintext = await keys.create_key(connection, name="temp")
        await keys.revoke_key(connection, record.id)
        await keys.revoke_key(connection, record.id)
        with pytest.raises(keys.ApiKeyError):
            await keys.revoke_key(connection, "zzzzzzzz")
    async with database.read() as connection:
        assert await keys.authenticate(connection, plaintext) is None
        (listed,) = await keys.list_keys(connection)
    assert listed.id == record.id
    assert listed.revoked_at is not None
    assert listed.revoked_at >= listed.created_at


async def test_operator_chosen_key_is_accepted_once_and_short_keys_refused(database: Database) -> None:
    chosen = "my-own-long-enough-key"
    async with database.write() as connection:
        assert await keys.ensure_bootstrap_key(connection, chosen) is None
        assert await keys.ensure_bootstrap_key(connection, chosen) is None
        with pytest.raises(keys.ApiKeyError):
            await keys.create_key(connection, key="short")
    async with database.read() as connection:
        assert await keys.authenticate(connection, chosen) is not None
        assert len(await keys.list_keys(connection)) == 1


async def test_first_start_creates_one_key_and_later_starts_none(database: Database) -> None:
    async with database.write() as connection:
        first = await keys.ensure_bootstrap_key(connection)
        again = await keys.ensure_bootstrap_key(connection)
    assert first is not None
    assert again is None
    async with database.read() as connection:
        assert await keys.authenticate(connection, first) is not None
