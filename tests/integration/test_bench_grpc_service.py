"""Smoke test of bench/grpc_service.py: a few requests at two concurrencies, so that the script never rots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sightd.zoo import installed

ROOT = Path(__file__).resolve().parents[2]


def test_grpc_service_bench_runs(zoo: installed.Zoo) -> None:
    arguments = ["--rounds", "1", "--requests", "3", "--concurrency", "1", "2"]
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "grpc_service.py"), *arguments],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["bench"] == "grpc_service"
    rows = {(row["variant"], row["concurrency"]): row for row in record["results"]}
    assert set(rows) == {
        (variant, concurrency)
        for variant in ("runtime_in_process", "grpc_recognize", "grpc_stream")
        for concurrency in (1, 2)
    }
    for row in rows.values():
        assert row["images_per_second"] > 0
        assert row["p50_ms"] <= row["p99_ms"]
    assert rows[("runtime_in_process", 1)]["over_runtime_in_process"] == 1.0
