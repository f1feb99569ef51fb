"""Smoke runs of the post-processing benchmarks (a few iterations) so that they never rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_bench(script: str, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args], capture_output=True, text=True, check=True, timeout=300
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["machine"]["cores"]
    assert report["versions"]["numpy"]
    return report


def test_nms_bench_smoke() -> None:
    report = run_bench("nms.py", "--sizes", "300", "--repeat", "1")
    results = report["results"]
    assert [(r["boxes"], r["layout"]) for r in results] == [(300, "clustered"), (300, "spread")]
    for row in results:
        assert row["agreement"]["numpy"] == 1.0
        assert row["agreement"]["opencv"] == 1.0
        assert row["ms"]["sightd"] > 0


def test_decode_bench_smoke() -> None:
    report = run_bench("decode.py", "--repeat", "1", "--scenarios", "typical")
    (row,) = report["results"]
    assert row["candidates"] > 0
    assert 0 < row["predicted"] <= row["reported"]
