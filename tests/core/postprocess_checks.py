"""Helpers shared by the post-processing tests: building processors from v0.7 JSON and comparing results."""

from __future__ import annotations

from typing import Any

import numpy as np
import postprocess_reference as ref

from sightd import _core
from sightd.postprocessing import VersionPostProcessor


def spec(kind: str, names: list[str], ids: list[int] | None = None) -> list[dict[str, Any]]:
    """A v0.7 spec `outputs` as the seed's generate_outputs() writes it."""
    ids = list(range(len(names))) if ids is None else ids
    return [
        {
            "labels": {
                "roi": "BBOX" if kind == "detection" else "NONE",
                "exclusive": kind != "tagging",
                "labels": [{"id": i, "name": n} for i, n in zip(ids, names, strict=True)],
            }
        }
    ]


def processor(kind: str, names: list[str], post_processing: dict[str, Any], ids: list[int] | None = None):  # type: ignore[no-untyped-def]
    return VersionPostProcessor.from_json(spec(kind, names, ids), [post_processing])


def run(
    pp: VersionPostProcessor,
    outputs: dict[str, np.ndarray],
    frame: ref.Frame | None = None,
    *,
    show_discarded: bool = True,
    max_predictions: int | None = None,
) -> _core.LabelsResult:
    transform = frame.transform() if frame else _core.Transform()
    return pp.process(outputs, transform, show_discarded=show_discarded, max_predictions=max_predictions)[0]


def assert_same(
    got: list[_core.Prediction], want: list[ref.RefPrediction], *, boxes: bool, tol: float = 1e-9
) -> None:
    assert [p.label_index for p in got] == [w.label for w in want], (
        f"labels {[p.label_index for p in got]} != {[w.label for w in want]}"
    )
    np.testing.assert_allclose([p.score for p in got], [w.score for w in want], rtol=tol, atol=tol)
    if boxes:
        got_boxes = np.array([[p.bbox.xmin, p.bbox.ymin, p.bbox.xmax, p.bbox.ymax] for p in got]).reshape(
            -1, 4
        )
        want_boxes = np.array([w.box for w in want]).reshape(-1, 4)
        np.testing.assert_allclose(got_boxes, want_boxes, rtol=tol, atol=tol)
        assert [p.region_id for p in got] == [w.region_id for w in want]


def assert_result(
    result: _core.LabelsResult,
    want: tuple[list[ref.RefPrediction], list[ref.RefPrediction]],
    *,
    boxes: bool = True,
    tol: float = 1e-9,
) -> None:
    assert_same(result.predicted, want[0], boxes=boxes, tol=tol)
    assert_same(result.discarded, want[1], boxes=boxes, tol=tol)
