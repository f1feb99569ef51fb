"""A version's ``post_processings`` (v0.7 plus sightd's extensions) into the core's PostProcessingConfig."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sightd import _core
from sightd.postprocessing.spec import LabelsOutput
from sightd.postprocessing.validation import Checker, PostProcessingError

_ACTIVATIONS = {"NONE": _core.Activation.NONE, "SOFTMAX": _core.Activation.SOFTMAX,
                "SIGMOID": _core.Activation.SIGMOID}  # fmt: skip


def _per_label_numbers(check: Checker, value: object, path: str, count: int) -> list[float]:
    if value is None:
        return []
    items = check.array(value, path)
    if items is None:
        return []
    if len(items) != count:
        check.fail(path, f"expected one threshold per label ({count}), got {len(items)}")
        return []
    return [check.number(v, f"{path}[{i}]", 0.0) for i, v in enumerate(items)]


def _class_indices(check: Checker, value: object, path: str, count: int) -> list[int]:
    if value is None:
        return []
    items = check.array(value, path)
    if items is None:
        return []
    if len(items) != count:
        check.fail(path, f"expected one network class per label ({count}), got {len(items)}")
        return []
    indices: list[int] = []
    seen: set[int] = set()  # a list lookup would make a spec of many labels quadratic to validate
    for i, v in enumerate(items):
        index = check.integer(v, f"{path}[{i}]")
        if index is None:
            continue
        if not 0 <= index < 2**31:
            check.fail(f"{path}[{i}]", "must be a non-negative class index")
        elif index in seen:
            check.fail(f"{path}[{i}]", f"network class {index} is given to two labels")
        seen.add(index)
        indices.append(index)
    return indices


def _classification(
    check: Checker, body: dict[str, Any], path: str, config: _core.PostProcessingConfig
) -> None:
    out = config.classification
    out.output_tensor = check.string(body.get("output_tensor"), f"{path}.output_tensor", required=True)
    out.activation = _ACTIVATIONS[
        check.choice(body.get("activation"), f"{path}.activation", tuple(_ACTIVATIONS), "NONE")
    ]


def _yolo(check: Checker, body: dict[str, Any], path: str) -> _core.YoloOutput:
    yolo = _core.YoloOutput()
    single = "output_tensor" in body or "anchors" in body
    if single and "output_tensors" in body:
        check.fail(path, "give either output_tensor and anchors, or output_tensors")
    heads: list[_core.YoloHead] = []
    if "output_tensors" in body:
        items = check.array(body["output_tensors"], f"{path}.output_tensors")
        if items is not None and not items:
            check.fail(f"{path}.output_tensors", "must hold at least one head")
        for i, item in enumerate(items or []):
            head = check.obj(item, f"{path}.output_tensors[{i}]", ("output_tensor", "anchors"))
            if head is not None:
                heads.append(_yolo_head(check, head, f"{path}.output_tensors[{i}]"))
    else:
        heads.append(_yolo_head(check, body, path))
    yolo.heads = heads
    activation = check.choice(
        body.get("class_activation"), f"{path}.class_activation", ("SOFTMAX", "SIGMOID"), "SOFTMAX"
    )
    yolo.class_activation = _ACTIVATIONS[activation]
    return yolo


def _yolo_head(check: Checker, body: dict[str, Any], path: str) -> _core.YoloHead:
    tensor = check.string(body.get("output_tensor"), f"{path}.output_tensor", required=True)
    anchors: list[float] = []
    raw = body.get("anchors")
    if raw is None:
        check.fail(f"{path}.anchors", "is required")
    else:
        items = check.array(raw, f"{path}.anchors")
        if items is not None:
            if not items or len(items) % 2:
                check.fail(f"{path}.anchors", "expected (width, height) pairs in grid units")
            for i, v in enumerate(items):
                positive = not isinstance(v, bool) and isinstance(v, int | float) and 0 < v < math.inf
                if not positive:
                    check.fail(f"{path}.anchors[{i}]", "must be a positive number")
                anchors.append(float(v) if positive else 1.0)
    return _core.YoloHead(tensor, anchors)


_DETECTION_FIELDS = (
    "anchored_output",
    "direct_output",
    "yolo_output",
    "thresholds",
    "discard_threshold",
    "nms_threshold",
    "normalize_wrt_tensor",
    "class_indices",
    "nms_class_agnostic",
)


def _detection(check: Checker, body: dict[str, Any], path: str, config: _core.PostProcessingConfig) -> None:
    det = config.detection
    formats = [key for key in ("anchored_output", "direct_output", "yolo_output") if key in body]
    if len(formats) != 1:
        check.fail(path, "expected exactly one of anchored_output, direct_output, yolo_output")
    det.discard_threshold = check.number(body.get("discard_threshold"), f"{path}.discard_threshold", 0.025)
    det.nms_threshold = check.number(body.get("nms_threshold"), f"{path}.nms_threshold", 0.3)
    det.normalize_wrt_tensor = check.string(body.get("normalize_wrt_tensor"), f"{path}.normalize_wrt_tensor",
                                            required=False)  # fmt: skip
    det.nms_class_agnostic = check.boolean(
        body.get("nms_class_agnostic"), f"{path}.nms_class_agnostic", False
    )
    if not formats:
        return
    name = formats[0]
    sub_path = f"{path}.{name}"
    if name == "anchored_output":
        fields = ("anchors_tensor", "scores_tensor", "offsets_tensor")
        sub = check.obj(body[name], sub_path, (*fields, "legacy_plus_one"))
        if sub is None:
            return
        det.format = _core.DetectionFormat.ANCHORED
        anchored = det.anchored
        anchored.anchors_tensor, anchored.scores_tensor, anchored.offsets_tensor = (
            check.string(sub.get(f), f"{sub_path}.{f}", required=True) for f in fields
        )
        anchored.legacy_plus_one = check.boolean(
            sub.get("legacy_plus_one"), f"{sub_path}.legacy_plus_one", False
        )
    elif name == "direct_output":
        fields = ("boxes_tensor", "scores_tensor", "classes_tensor")
        sub = check.obj(body[name], sub_path, (*fields, "num_detections_tensor"))
        if sub is None:
            return
        det.format = _core.DetectionFormat.DIRECT
        direct = det.direct
        direct.boxes_tensor, direct.scores_tensor, direct.classes_tensor = (
            check.string(sub.get(f), f"{sub_path}.{f}", required=True) for f in fields
        )
        direct.num_detections_tensor = check.string(
            sub.get("num_detections_tensor"), f"{sub_path}.num_detections_tensor", required=False
        )
    else:
        sub = check.obj(
            body[name], sub_path, ("output_tensor", "anchors", "output_tensors", "class_activation")
        )
        if sub is None:
            return
        det.format = _core.DetectionFormat.YOLO
        det.yolo = _yolo(check, sub, sub_path)
        if det.normalize_wrt_tensor:
            check.fail(
                f"{path}.normalize_wrt_tensor",
                "must be empty for yolo_output (boxes are relative to the grid)",
            )


def _post_processing(
    check: Checker, value: object, path: str, spec: LabelsOutput | None
) -> _core.PostProcessingConfig:
    config = _core.PostProcessingConfig()
    entry = check.obj(value, path, ("classification", "detection"))
    if entry is None:
        return config
    kinds = [k for k in ("classification", "detection") if k in entry]
    if len(kinds) != 1:
        check.fail(path, "expected exactly one of classification, detection")
        return config
    kind = kinds[0]
    body_path = f"{path}.{kind}"
    allowed = (
        ("output_tensor", "thresholds", "activation", "class_indices")
        if kind == "classification"
        else _DETECTION_FIELDS
    )
    body = check.obj(entry[kind], body_path, allowed)
    if body is None:
        return config
    count = len(spec.labels) if spec else 0
    if spec is not None:
        if kind == "classification" and spec.roi != "NONE":
            check.fail(body_path, "the spec output has roi BBOX: it needs a detection post-processing")
        if kind == "detection" and spec.roi != "BBOX":
            check.fail(body_path, "the spec output has roi NONE: it needs a classification post-processing")
        config.spec = _labels_spec(spec)
    if kind == "classification":
        _classification(check, body, body_path, config)
    else:
        _detection(check, body, body_path, config)
    if spec is not None:
        config.thresholds = _per_label_numbers(
            check, body.get("thresholds"), f"{body_path}.thresholds", count
        )
        config.class_indices = _class_indices(
            check, body.get("class_indices"), f"{body_path}.class_indices", count
        )
    return config


def _labels_spec(spec: LabelsOutput) -> _core.LabelsSpec:
    core = _core.LabelsSpec()
    core.roi = _core.RoiType.BBOX if spec.roi == "BBOX" else _core.RoiType.NONE
    core.exclusive = spec.exclusive
    core.labels = [_core.SpecLabel(label.id, label.name) for label in spec.labels]
    return core


def parse_post_processings(
    post_processings: object, spec_outputs: Sequence[LabelsOutput], path: str = "post_processings"
) -> list[_core.PostProcessingConfig]:
    """Validates a version's ``post_processings`` against its spec's outputs (one entry per output)."""
    check = Checker()
    configs = read_post_processings(check, post_processings, spec_outputs, path)
    if check.violations:
        raise PostProcessingError(check.violations)
    return configs


def read_post_processings(
    check: Checker, value: object, spec_outputs: Sequence[LabelsOutput], path: str
) -> list[_core.PostProcessingConfig]:
    items = check.array(value, path)
    if items is None:
        return []
    if len(items) != len(spec_outputs):
        check.fail(
            path, f"expected one post-processing per spec output ({len(spec_outputs)}), got {len(items)}"
        )
    return [
        _post_processing(check, item, f"{path}[{i}]", spec_outputs[i] if i < len(spec_outputs) else None)
        for i, item in enumerate(items)
    ]
