"""Smoke test of bench/runtime.py: a few requests at two concurrencies, so that the script never rots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sightd.zoo import installed

ROOT = Path(__file__).resolve().parents[2]


def test_runtime_bench_runs(zoo: installed.Zoo) -> None:
    arguments = [
        "--rounds",
        "1",
        "--requests",
        "4",
        "--concurrency",
        "1",
        "3",
        "--workers",
        "1",
        "--max-batch",
        "8",
    ]
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "runtime.py"), *arguments],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["bench"] == "runtime"
    assert set(record["baselines"]) == {"recognizer_one", "recognizer_batch", "onnxruntime_tensor"}
    rows = {(row["max_batch"], row["concurrency"]): row for row in record["results"]}
    assert set(rows) == {(b, c) for b in (1, 8) for c in (1, 3)}
    for row in rows.values():
        assert row["images_per_second"] > 0
        assert row["p50_ms"] <= row["p99_ms"]
        assert row["over_recognizer_one"] > 0
        assert row["over_onnxruntime_tensor"] > 0
    assert rows[(1, 3)]["variant"] == "no_batching"
    assert rows[(1, 3)]["average_batch"] == 1.0
    assert rows[(8, 3)]["variant"] == "batching"
    assert 1.0 <= rows[(8, 3)]["average_batch"] <= 3.0
