"""Core results into the v0.7 result JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sightd import _core


def _json_float(value: float) -> float:
    """A float32-derived value with the 9 significant digits that round-trip a float32, as the seed prints."""
    return float(f"{value:.9g}")


def prediction_to_json(prediction: _core.Prediction, has_roi: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"label_name": prediction.label_name, "label_id": prediction.label_id}
    if has_roi:
        box = prediction.bbox
        item["roi"] = {
            "region_id": prediction.region_id,
            "bbox": {
                "xmin": _json_float(box.xmin),
                "ymin": _json_float(box.ymin),
                "ymax": _json_float(box.ymax),
                "xmax": _json_float(box.xmax),
            },
        }
    item["score"] = _json_float(prediction.score)
    item["threshold"] = prediction.threshold
    return item


def labels_to_json(result: _core.LabelsResult) -> dict[str, Any]:
    return {
        "labels": {
            "predicted": [prediction_to_json(p, result.has_roi) for p in result.predicted],
            "discarded": [prediction_to_json(p, result.has_roi) for p in result.discarded],
        }
    }


def result_to_json(results: Sequence[_core.LabelsResult]) -> dict[str, Any]:
    """Core results (one per spec output) -> the v0.7 inference result."""
    return {"outputs": [labels_to_json(r) for r in results]}
