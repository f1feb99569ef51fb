"""Smoke tests of bench/latency_floor.py and bench/soak.py: a few requests, a few seconds, so that the
scripts never rot. The figures are checked for sanity (positive, p50 <= p99, the bound's arithmetic, the
error answers), never against a timing goal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sightd.zoo import installed

ROOT = Path(__file__).resolve().parents[2]


def last_json_line(script: str, *arguments: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *arguments],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    record: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return record


def test_latency_floor_bench_runs(zoo: installed.Zoo) -> None:
    record = last_json_line("latency_floor.py", "--rounds", "2", "--requests", "4", "--warmup", "2")
    assert record["bench"] == "latency_floor"
    assert record["rounds"] == 2
    images = ("dog_64x48", "dog_768x576")
    rows = {(row["variant"], row["image"]): row for row in record["results"]}
    per_image = ("in_process_core", "in_process_runtime", "empty_grpc_same_bytes", "sightd_grpc")
    assert set(rows) == {("empty_grpc", None)} | {(v, image) for v in per_image for image in images}
    for key, row in rows.items():
        assert 0 < row["p50_us"] <= row["p99_us"], key
        # CPU time is read for the server processes only
        assert ("server_cpu_us_per_call" in row) == (
            key[0] in {"empty_grpc", "empty_grpc_same_bytes", "sightd_grpc"}
        )
        assert row.get("server_cpu_us_per_call", 0) >= 0
    goals = {goal["image"]: goal for goal in record["goals"]}
    assert set(goals) == set(images)
    assert goals["dog_64x48"]["image_bytes"] < goals["dog_768x576"]["image_bytes"]
    assert (record["holds"], record["margin_us"]) == (
        goals["dog_64x48"]["holds"],
        goals["dog_64x48"]["margin_us"],
    )
    for image, goal in goals.items():
        assert goal["top_label"].startswith("class ")
        assert goal["in_process_p50_us"] == rows[("in_process_core", image)]["p50_us"]
        assert goal["empty_grpc_p50_us"] == rows[("empty_grpc", None)]["p50_us"]
        assert goal["sightd_p50_us"] == rows[("sightd_grpc", image)]["p50_us"]
        assert goal["bound_p50_us"] == pytest.approx(
            goal["in_process_p50_us"] + goal["empty_grpc_p50_us"] + 300
        )
        assert goal["margin_us"] == pytest.approx(goal["bound_p50_us"] - goal["sightd_p50_us"])
        assert goal["holds"] is (goal["margin_us"] >= 0)
        assert 0 < goal["sightd_p50_us"] <= goal["sightd_p99_us"]


# How each kind of bad request is answered: its status code over gRPC (a task: failed with it); over REST
# the truncated JPEG's task fails, and the unknown spec's POST is answered 404.
REFUSALS = {
    "recognize": ("INVALID_ARGUMENT", "NOT_FOUND"),
    "infer_wait": ("INVALID_ARGUMENT", "NOT_FOUND"),
    "rest": ("TASK_ERROR", "HTTP_404"),
}


@pytest.mark.parametrize("calls", sorted(REFUSALS))
def test_soak_bench_runs(zoo: installed.Zoo, calls: str) -> None:
    record = last_json_line(
        "soak.py", "--seconds", "5", "--interval", "1", "--error-every", "5", "--calls", calls
    )
    assert (record["bench"], record["calls"]) == ("soak", calls)
    assert record["concurrency"] == 32
    assert record["mix_errors"] is True
    assert record["requests"] > 0
    assert record["images_per_second"] > 0
    assert 0 < record["p50_ms"] <= record["p99_ms"]
    # every good request answered, every bad one refused as its kind is
    assert record["answers"]["good"] == {"OK": record["requests"]}
    truncated, unknown = REFUSALS[calls]
    assert set(record["answers"]["truncated_jpeg"]) == {truncated}
    assert set(record["answers"]["unknown_spec"]) == {unknown}
    samples = record["samples"]
    assert len(samples) >= 5
    times = [s["t_s"] for s in samples]
    assert times == sorted(times)
    assert times[-1] >= 5
    assert all(s["rss_mib"] > 0 and s["threads"] > 0 and s["fds"] > 0 for s in samples)
    assert samples[-1]["requests"] == record["requests"]
    assert record["rss_max_mib"] == max(s["rss_mib"] for s in samples)
    assert record["rss_end_mib"] == samples[-1]["rss_mib"]
    assert record["rss_growth_mib"] == pytest.approx(record["rss_end_mib"] - record["rss_after_warmup_mib"])
    assert record["no_growth"] is (record["rss_growth_mib"] <= record["rss_growth_allowed_mib"])
    assert isinstance(record["rss_slope_mib_per_minute"], float)
    assert record["threads_max"] == max(s["threads"] for s in samples) >= record["threads_end"] > 0
    assert record["fds_max"] == max(s["fds"] for s in samples) >= record["fds_end"] > 0
