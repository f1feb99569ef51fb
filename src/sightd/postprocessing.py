"""Post-processing: the v0.7 spec ``outputs`` and a version's ``post_processings`` into the core's config, and
the core's results into v0.7 result JSON.

Parsing collects every violation, as (field path, message) pairs, before raising one
:class:`PostProcessingError`; the paths are those of the v0.7 documents (``outputs[0].labels.labels[3].id``,
``post_processings[0].detection.nms_threshold``). ``docs/postprocessing.md`` documents every field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sightd import _core
from sightd.errors import InvalidArgumentError

Violation = tuple[str, str]

DEFAULT_THRESHOLD_CLASSIFICATION = 0.025
DEFAULT_THRESHOLD_TAGGING = 0.5
DEFAULT_THRESHOLD_DETECTION = 0.8


class PostProcessingError(InvalidArgumentError):
    """A spec's outputs or a version's post-processings are invalid; ``violations`` lists every problem."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations: list[Violation] = list(violations)
        message = "; ".join(f"{field}: {text}" for field, text in self.violations)
        super().__init__(message, field=self.violations[0][0] if self.violations else "")

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class SpecLabel:
    id: int
    name: str


@dataclass(frozen=True)
class LabelsOutput:
    """One v0.7 spec output: ``{"labels": {"roi": ..., "exclusive": ..., "labels": [...]}}``."""

    roi: str  # "NONE" | "BBOX"
    exclusive: bool
    labels: tuple[SpecLabel, ...]

    @property
    def kind(self) -> str:
        """``classification``, ``tagging`` or ``detection``."""
        if self.roi == "BBOX":
            return "detection"
        return "classification" if self.exclusive else "tagging"


class _Checker:
    """Collects violations while reading a JSON document."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []

    def fail(self, path: str, message: str) -> None:
        self.violations.append((path, message))

    def obj(self, value: object, path: str, allowed: Sequence[str]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.fail(path, "must be an object")
            return None
        for key in value:
            if key not in allowed:
                self.fail(f"{path}.{key}", "unknown field")
        return value

    def string(self, value: object, path: str, *, required: bool) -> str:
        if value is None:
            if required:
                self.fail(path, "is required")
            return ""
        if not isinstance(value, str):
            self.fail(path, "must be a string")
            return ""
        if required and not value:
            self.fail(path, "must not be empty")
        return value

    def boolean(self, value: object, path: str, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(path, "must be true or false")
            return default
        return value

    def number(self, value: object, path: str, default: float, lo: float = 0.0, hi: float = 1.0) -> float:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(path, "must be a number")
            return default
        if not lo <= value <= hi:
            self.fail(path, f"must be in [{lo:g}, {hi:g}]")
            return default
        return float(value)

    def integer(self, value: object, path: str) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, "must be an integer")
            return None
        return value

    def choice(self, value: object, path: str, choices: Sequence[str], default: str) -> str:
        if value is None:
            return default
        if value not in choices:
            self.fail(path, "must be one of " + ", ".join(choices))
            return default
        return str(value)

    def array(self, value: object, path: str) -> list[Any] | None:
        if not isinstance(value, list):
            self.fail(path, "must be an array")
            return None
        return value


def _parse_label_list(check: _Checker, value: object, path: str) -> tuple[SpecLabel, ...]:
    items = check.array(value, path)
    if items is None:
        return ()
    if not items:
        check.fail(path, "must list at least one label")
    labels: list[SpecLabel] = []
    seen: set[int] = set()
    for i, item in enumerate(items):
        item_path = f"{path}[{i}]"
        entry = check.obj(item, item_path, ("id", "name"))
        if entry is None:
            continue
        label_id = check.integer(entry.get("id"), f"{item_path}.id")
        name = check.string(entry.get("name"), f"{item_path}.name", required=True)
        if label_id is None:
            continue
        if label_id in seen:
            check.fail(f"{item_path}.id", f"duplicate label id {label_id}")
        elif not -(2**63) <= label_id < 2**63:
            check.fail(f"{item_path}.id", "must fit in 64 bits")
        seen.add(label_id)
        labels.append(SpecLabel(label_id, name))
    return tuple(labels)


def _spec_outputs(check: _Checker, outputs: object, path: str) -> list[LabelsOutput]:
    items = check.array(outputs, path)
    if items is None:
        return []
    if not items:
        check.fail(path, "must hold at least one output")
    parsed: list[LabelsOutput] = []
    for i, item in enumerate(items):
        item_path = f"{path}[{i}]"
        entry = check.obj(item, item_path, ("labels",))
        if entry is None:
            continue
        labels_path = f"{item_path}.labels"
        labels = check.obj(entry.get("labels"), labels_path, ("roi", "exclusive", "labels"))
        if labels is None:
            continue
        if labels.get("roi") is None:
            check.fail(f"{labels_path}.roi", "is required")
        roi = check.choice(labels.get("roi"), f"{labels_path}.roi", ("NONE", "BBOX"), "NONE")
        if labels.get("exclusive") is None:
            check.fail(f"{labels_path}.exclusive", "is required")
        exclusive = check.boolean(labels.get("exclusive"), f"{labels_path}.exclusive", True)
        label_list = _parse_label_list(check, labels.get("labels"), f"{labels_path}.labels")
        parsed.append(LabelsOutput(roi, exclusive, label_list))
    return parsed


def parse_spec_outputs(outputs: object, path: str = "outputs") -> list[LabelsOutput]:
    """Validates a v0.7 spec ``outputs`` array; raises :class:`PostProcessingError` listing every problem."""
    check = _Checker()
    parsed = _spec_outputs(check, outputs, path)
    if check.violations:
        raise PostProcessingError(check.violations)
    return parsed


_ACTIVATIONS = {"NONE": _core.Activation.NONE, "SOFTMAX": _core.Activation.SOFTMAX,
                "SIGMOID": _core.Activation.SIGMOID}  # fmt: skip


def _per_label_numbers(check: _Checker, value: object, path: str, count: int) -> list[float]:
    if value is None:
        return []
    items = check.array(value, path)
    if items is None:
        return []
    if len(items) != count:
        check.fail(path, f"expected one threshold per label ({count}), got {len(items)}")
        return []
    return [check.number(v, f"{path}[{i}]", 0.0) for i, v in enumerate(items)]


def _class_indices(check: _Checker, value: object, path: str, count: int) -> list[int]:
    if value is None:
        return []
    items = check.array(value, path)
    if items is None:
        return []
    if len(items) != count:
        check.fail(path, f"expected one network class per label ({count}), got {len(items)}")
        return []
    indices: list[int] = []
    for i, v in enumerate(items):
        index = check.integer(v, f"{path}[{i}]")
        if index is None:
            continue
        if not 0 <= index < 2**31:
            check.fail(f"{path}[{i}]", "must be a non-negative class index")
        elif index in indices:
            check.fail(f"{path}[{i}]", f"network class {index} is given to two labels")
        indices.append(index)
    return indices


def _classification(
    check: _Checker, body: dict[str, Any], path: str, config: _core.PostProcessingConfig
) -> None:
    out = config.classification
    out.output_tensor = check.string(body.get("output_tensor"), f"{path}.output_tensor", required=True)
    out.activation = _ACTIVATIONS[
        check.choice(body.get("activation"), f"{path}.activation", tuple(_ACTIVATIONS), "NONE")
    ]


def _yolo(check: _Checker, body: dict[str, Any], path: str) -> _core.YoloOutput:
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


def _yolo_head(check: _Checker, body: dict[str, Any], path: str) -> _core.YoloHead:
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


def _detection(check: _Checker, body: dict[str, Any], path: str, config: _core.PostProcessingConfig) -> None:
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
    check: _Checker, value: object, path: str, spec: LabelsOutput | None
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
    check = _Checker()
    configs = _post_processings(check, post_processings, spec_outputs, path)
    if check.violations:
        raise PostProcessingError(check.violations)
    return configs


def _post_processings(
    check: _Checker, value: object, spec_outputs: Sequence[LabelsOutput], path: str
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


class VersionPostProcessor:
    """The prepared post-processing of a recognition version: one core PostProcessor per spec output."""

    def __init__(
        self, spec_outputs: Sequence[LabelsOutput], configs: Sequence[_core.PostProcessingConfig]
    ) -> None:
        if len(spec_outputs) != len(configs):
            raise PostProcessingError([("post_processings", "expected one post-processing per spec output")])
        self.spec_outputs = list(spec_outputs)
        self.processors: list[_core.PostProcessor] = []
        for i, config in enumerate(configs):
            try:
                self.processors.append(_core.PostProcessor(config))
            except InvalidArgumentError as error:
                field = error.field
                where = (
                    f"outputs[{i}].labels.{field[5:]}"
                    if field.startswith("spec.")
                    else f"post_processings[{i}].{field}"
                )
                raise PostProcessingError([(where, error.message)]) from error
        names: list[str] = []
        for processor in self.processors:
            names.extend(n for n in processor.required_tensors if n not in names)
        self.required_tensors: list[str] = names

    @classmethod
    def from_json(cls, spec_outputs: object, post_processings: object) -> VersionPostProcessor:
        """Parses the spec's ``outputs`` and the version's ``post_processings``, reporting all violations."""
        check = _Checker()
        outputs = _spec_outputs(check, spec_outputs, "outputs")
        configs = _post_processings(check, post_processings, outputs, "post_processings")
        if check.violations:
            raise PostProcessingError(check.violations)
        return cls(outputs, configs)

    def process(
        self,
        outputs: Mapping[str, npt.NDArray[Any]],
        transform: _core.Transform,
        *,
        show_discarded: bool = False,
        max_predictions: int | None = None,
    ) -> list[_core.LabelsResult]:
        """One image's network outputs (by tensor name) -> one result per spec output."""
        if max_predictions is not None and (isinstance(max_predictions, bool) or max_predictions < 0):
            raise InvalidArgumentError("must be a non-negative integer", field="max_predictions")
        arrays = {
            name: np.ascontiguousarray(outputs[name]) for name in self.required_tensors if name in outputs
        }
        cap = -1 if max_predictions is None else max_predictions
        return [p.process(arrays, transform, show_discarded, cap) for p in self.processors]

    def process_json(
        self,
        outputs: Mapping[str, npt.NDArray[Any]],
        transform: _core.Transform,
        *,
        show_discarded: bool = False,
        max_predictions: int | None = None,
    ) -> dict[str, Any]:
        """The same, as the v0.7 result JSON ``{"outputs": [{"labels": {...}}]}``."""
        results = self.process(
            outputs, transform, show_discarded=show_discarded, max_predictions=max_predictions
        )
        return result_to_json(results)


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
