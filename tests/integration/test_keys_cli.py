"""`sightd keys create | list | revoke` as an operator runs it, on the embedded store and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sightd.store import keys
from sightd.store.database import open_database


def _sightd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sightd.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )


async def test_key_life_cycle_from_the_command_line(database_url: str, tmp_path: Path) -> None:
    store = ["--data-dir", str(tmp_path)]
    if database_url.startswith("postgresql"):
        store += ["--database-url", database_url.replace("+asyncpg", "")]
    created = _sightd("keys", "create", *store, "--tenant", "acme", "--name", "ci")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert keys.KEY_PATTERN.fullmatch(key)
    key_id = key[3:11]

    listed = _sightd("keys", "list", *store)
    assert listed.returncode == 0, listed.stderr
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith(key_id)]
    assert "acme" in row
    assert "active" in row
    assert key not in listed.stdout

    database = await open_database(
        database_url
        if database_url.startswith("postgresql")
        else f"sqlite+aiosqlite:///{tmp_path / 'sightd.db'}"
    )
    try:
        async with database.read() as connection:
            assert await keys.authenticate(connection, key) is not None
        revoked = _sightd("keys", "revoke", *store, key_id)
        assert revoked.returncode == 0, revoked.stderr
        async with database.read() as connection:
            assert await keys.authenticate(connection, key) is None
    finally:
        await database.close()
    unknown = _sightd("keys", "revoke", *store, "zzzzzzzz")
    assert unknown.returncode == 1
    assert "no API key" in unknown.stderr
