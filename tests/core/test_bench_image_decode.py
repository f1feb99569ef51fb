"""Smoke test of bench/image_decode.py: a couple of iterations, so that the benchmark never rots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_decode_bench_runs(tmp_path: Path) -> None:
    script = ROOT / "bench" / "image_decode.py"
    done = subprocess.run(
        [sys.executable, str(script), "--iterations", "1", "--build-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["bench"] == "decode"
    assert {row["image"] for row in result["python"]} >= {"dog.jpg", "retina_12mp.jpg", "astronaut.png"}
    native = {(row["image"], row["case"]) for row in result["native"]}
    assert ("retina_12mp.jpg", "reduced_8") in native
    assert all(row["ratio"] > 0 for row in result["native"])
    # The core's own JPEG path gives Debian OpenCV's pixels (same libjpeg-turbo, same IDCT), reductions too.
    jpeg = [row for row in result["native"] if str(row["image"]).endswith(".jpg")]
    assert all(row["differing_bytes"] == 0 for row in jpeg), jpeg
