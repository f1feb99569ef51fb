"""Smoke test of bench/preprocess.py: a few iterations, so that the benchmark never rots."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "preprocess.py"


def test_preprocess_bench_runs(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_preprocess", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(["--rounds", "1", "--iterations", "2", "--batch", "2"])
    out = capsys.readouterr().out
    assert "machine:" in out
    assert '{"bench": "preprocess"' in out
    # The core computes the same recipe as the OpenCV-Python + NumPy version it is compared with.
    assert results["core_vs_opencv_max_abs_diff"] < 1e-4
    # With antialias, the same recipe as the Pillow + NumPy version.
    assert results["core_antialias_vs_pillow_max_abs_diff"] < 1e-4
    assert {"core_antialias", "pillow_bilinear", "opencv_area"} <= set(results["resize_only"]["ms"])
    for label in ("dog.jpg 768x576", "4000x3000"):
        assert {"core", "core_reduced", "core_antialias", "opencv_numpy", "pillow_numpy"} <= set(
            results[label]["ms"]
        )
        assert results[label]["reduced_mean_abs_diff"] < 0.2
    assert results["batch"]["size"] == 2
