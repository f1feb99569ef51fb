"""A smoke run of bench/task_store.py (a few tasks) so that it never rots: every variant and operation is
measured, and each variant checks the documents it reads back while it runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_task_store_bench_smoke() -> None:
    command = [sys.executable, str(BENCH / "task_store.py"), "--rounds", "1", "--tasks", "3"]
    done = subprocess.run(
        [*command, "--request-bytes", "1000"], capture_output=True, text=True, check=True, timeout=300
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["machine"]["cores"]
    assert report["versions"]["sqlite"]
    rows = {(r["variant"], r["operation"]): r for r in report["results"]}
    assert set(rows) == {
        (variant, operation)
        for variant in ("board", "aiosqlite", "sqlite3")
        for operation in ("create", "outcome", "read")
    }
    for row in rows.values():
        assert row["cpu_us"] > 0
        assert row["wall_us"] > 0
