"""The prepared post-processing of a recognition version."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from sightd import _core
from sightd.errors import InvalidArgumentError
from sightd.postprocessing.config import read_post_processings
from sightd.postprocessing.results import result_to_json
from sightd.postprocessing.spec import LabelsOutput, read_spec_outputs
from sightd.postprocessing.validation import Checker, PostProcessingError


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
    def from_json(cls, spec_outputs_json: object, post_processings_json: object) -> VersionPostProcessor:
        """Parses the spec's ``outputs`` and the version's ``post_processings``, reporting all violations."""
        check = Checker()
        outputs = read_spec_outputs(check, spec_outputs_json, "outputs")
        configs = read_post_processings(check, post_processings_json, outputs, "post_processings")
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
