"""Smoke test of bench/pipeline.py: a few iterations on two batch sizes, so that the script never rots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sightd.zoo import installed

ROOT = Path(__file__).resolve().parents[2]


def test_pipeline_bench_runs(zoo: installed.Zoo) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "pipeline.py"),
            "--rounds",
            "1",
            "--iterations",
            "1",
            "--batches",
            "1",
            "2",
            "--threads",
            "1",
            "--sweep",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["bench"] == "pipeline"
    assert [r["batch"] for r in record["results"]] == [1, 2]
    for row in record["results"]:
        assert set(row["images_per_second"]) == {"onnxruntime_tensor", "diy_python", "sightd_t1_nospin"}
        assert row["sightd_over_onnxruntime_tensor"] > 0
        assert row["sightd_over_diy_python"] > 0
