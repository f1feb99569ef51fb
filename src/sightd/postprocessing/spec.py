"""A v0.7 spec's ``outputs``: labels, roi, exclusive."""

from __future__ import annotations

from dataclasses import dataclass

from sightd.postprocessing.validation import Checker, PostProcessingError


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


def _parse_label_list(check: Checker, value: object, path: str) -> tuple[SpecLabel, ...]:
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


def read_spec_outputs(check: Checker, outputs: object, path: str) -> list[LabelsOutput]:
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
    check = Checker()
    parsed = read_spec_outputs(check, outputs, path)
    if check.violations:
        raise PostProcessingError(check.violations)
    return parsed
