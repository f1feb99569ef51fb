"""Smoke test of bench/engine_run.py: a few iterations, so that the script never rots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_engine_bench_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "engine_run.py"), "--iterations", "10"],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["bench"] == "engine_run"
    assert [r["model"] for r in record["results"]] == ["tiny", "dense"]
    assert all(r["ratio_sightd_over_onnxruntime"] > 0 for r in record["results"])
