"""Post-processing: the v0.7 spec ``outputs`` and a version's ``post_processings`` into the core's config, and
the core's results into v0.7 result JSON.

Parsing collects every violation, as (field path, message) pairs, before raising one
:class:`PostProcessingError`; the paths are those of the v0.7 documents (``outputs[0].labels.labels[3].id``,
``post_processings[0].detection.nms_threshold``). ``docs/postprocessing.md`` documents every field.
"""

from __future__ import annotations

from sightd.postprocessing.config import parse_post_processings
from sightd.postprocessing.results import labels_to_json, prediction_to_json, result_to_json
from sightd.postprocessing.spec import LabelsOutput, SpecLabel, parse_spec_outputs
from sightd.postprocessing.validation import PostProcessingError, Violation
from sightd.postprocessing.version import VersionPostProcessor

__all__ = [
    "LabelsOutput",
    "PostProcessingError",
    "SpecLabel",
    "VersionPostProcessor",
    "Violation",
    "labels_to_json",
    "parse_post_processings",
    "parse_spec_outputs",
    "prediction_to_json",
    "result_to_json",
]
