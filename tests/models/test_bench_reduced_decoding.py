"""Smoke test of bench/reduced_decoding_accuracy.py on two photos, so that the benchmark never rots."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from sightd.zoo import installed

BENCH = Path(__file__).resolve().parents[2] / "bench" / "reduced_decoding_accuracy.py"


def test_reduced_decoding_accuracy_bench_runs(zoo: installed.Zoo) -> None:
    spec = importlib.util.spec_from_file_location("bench_reduced_decoding_accuracy", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(["--limit", "2"])
    assert len(results) == 3 * 2
    for key, row in results.items():
        assert row["images"] == 2
        assert 0.0 <= row["top1_agreement"] <= 1.0
        if key.endswith("4000"):
            # 4000-pixel JPEGs are decoded at a reduced scale: the tensors differ, a little.
            assert row["tensor_mean_abs_diff"] > 0.0
