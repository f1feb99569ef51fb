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


def test_result_message_bench_smoke() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "result_message.py"), "--rounds", "1", "--answers", "3"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["machine"]["cores"]
    rows = report["results"]
    assert [(r["model"], r["show_discarded"]) for r in rows] == [
        ("imagenet-mobilenet-v2", False),
        ("imagenet-mobilenet-v2", True),
        ("coco-yolov3-tiny", False),
        ("coco-yolov3-tiny", True),
    ]
    for row in rows:  # the script checks that both paths answer the same bytes before timing them
        assert row["predictions"] > 0
        assert row["python_us"] > 0
        assert row["core_us"] > 0
