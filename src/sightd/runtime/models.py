"""Building what the runtime runs from definitions, on a loader thread: a version's Recognizer, a network's
Pipeline, their memory estimate, and the validation of a definition before it is stored.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from sightd import _core, engine
from sightd.errors import CoreError, EngineError, InvalidArgumentError
from sightd.postprocessing import VersionPostProcessor
from sightd.postprocessing.validation import PostProcessingError
from sightd.preprocessing import PreprocessingError, parse_preprocessing
from sightd.recognition import Recognizer
from sightd.runtime.definitions import (
    ImageOutcome,
    NetworkDefinition,
    RuntimeSettings,
    TensorsOutcome,
    VersionDefinition,
)

LOGGER = logging.getLogger("sightd.runtime")

Violation = tuple[str, str]
Image = tuple[bytes, _core.Roi | None]
# Field of the violations about the network file itself (it does not load, or does not run).
NETWORK_FIELD = "network"


def synthetic_image(width: int = 320, height: int = 240) -> bytes:
    """A binary PPM with a colour gradient: something every preprocessing can decode and resize, for the
    validation's trial run and the warm-up, without an image encoder."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    rgb = np.stack(np.broadcast_arrays(x + 0 * y, y + 0 * x, (x + y) / 2), axis=-1).astype(np.uint8)
    return f"P6 {width} {height} 255\n".encode("ascii") + rgb.tobytes()


def resident_bytes() -> int | None:
    """The process's resident memory (Linux), None where /proc is not there."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class LoadedVersion:
    """A version's Recognizer as the runtime runs it: one core call per batch, each image's outcome holding
    its serialized result message (its v0.7 document is built when read)."""

    kind = "recognition"

    def __init__(self, recognizer: Recognizer, max_batch: int) -> None:
        self.recognizer = recognizer
        self.max_batch = max_batch  # the most images the batcher gives it at once (batch_limit)

    def run(
        self, images: Sequence[Image], show_discarded: bool, max_predictions: int | None
    ) -> tuple[list[ImageOutcome], _core.StageTimes]:
        times = _core.StageTimes()
        results = self.recognizer.recognize(
            images, show_discarded=show_discarded, max_predictions=max_predictions, times=times
        )
        outcomes = [ImageOutcome(r) if r.ok else ImageOutcome(error=_error_of(r)) for r in results]
        return outcomes, times


class LoadedNetwork:
    """A network's Pipeline computing every numeric output; each request keeps the tensors it asked for."""

    kind = "network"

    def __init__(self, pipeline: _core.Pipeline, max_batch: int) -> None:
        self.pipeline = pipeline
        self.max_batch = max_batch
        self.output_names: list[str] = list(pipeline.output_names)

    def run(self, images: Sequence[Image]) -> tuple[list[TensorsOutcome], _core.StageTimes]:
        times = _core.StageTimes()
        results = self.pipeline.run(images, times=times)
        outcomes = [
            TensorsOutcome(tensors=dict(r.outputs)) if r.ok else TensorsOutcome(error=_error_of(r))
            for r in results
        ]
        return outcomes, times


def _error_of(result: _core.RecognitionResult | _core.ImageResult) -> CoreError:
    error = result.error
    return error if error is not None else CoreError(result.error_message, field=result.error_field)


def _session(definition: VersionDefinition | NetworkDefinition, settings: RuntimeSettings) -> _core.Session:
    s = settings.session_settings
    return engine.create_session(
        definition.network_path,
        intra_op_threads=s.intra_op_threads,
        inter_op_threads=s.inter_op_threads,
        optimization=s.optimization,
        execution_provider=s.execution_provider,
        device_id=s.device_id,
        allow_spinning=s.allow_spinning,
    )


def batch_limit(settings: RuntimeSettings, provider: str) -> int:
    """The most images in one batch of a model running on ``provider``: ``max_batch``, at most
    ``cpu_max_batch`` on the CPU (docs/runtime.md, "Batching")."""
    if settings.cpu_max_batch is not None and provider == "CPUExecutionProvider":
        return min(settings.max_batch, settings.cpu_max_batch)
    return settings.max_batch


def build_version(
    definition: VersionDefinition, settings: RuntimeSettings, pool: _core.ThreadPool | None = None
) -> LoadedVersion:
    """Raises PreprocessingError / PostProcessingError / InvalidArgumentError naming the field, EngineError
    when the network does not load (sightd.recognition.Recognizer.from_documents)."""
    recognizer = Recognizer.from_documents(
        definition.network_path,
        definition.preprocessing,
        definition.spec_outputs,
        definition.post_processings,
        mean_files=definition.mean_files,
        session=settings.session_settings,
        max_pixels=settings.max_pixels,
        pool=pool,
    )
    return LoadedVersion(recognizer, batch_limit(settings, recognizer.provider))


def build_network(
    definition: NetworkDefinition, settings: RuntimeSettings, pool: _core.ThreadPool | None = None
) -> LoadedNetwork:
    spec = parse_preprocessing(definition.preprocessing, definition.mean_files)
    session = _session(definition, settings)
    pipeline = _core.Pipeline(session, spec, [], max_pixels=settings.max_pixels, pool=pool)
    return LoadedNetwork(pipeline, batch_limit(settings, session.provider))


def load(
    definition: VersionDefinition | NetworkDefinition,
    settings: RuntimeSettings,
    pool: _core.ThreadPool | None = None,
) -> tuple[LoadedVersion | LoadedNetwork, int]:
    """The built model and its estimated memory: the resident memory its load and warm-up added, at least
    ``memory_factor`` times its file's size (a concurrent free can hide what a load took)."""
    before = resident_bytes()
    model: LoadedVersion | LoadedNetwork
    if isinstance(definition, VersionDefinition):
        model = build_version(definition, settings, pool)
    else:
        model = build_network(definition, settings, pool)
    if settings.warmup:
        _warm_up(model, model.max_batch)
    after = resident_bytes()
    measured = after - before if before is not None and after is not None else 0
    estimated = int(definition.network_path.stat().st_size * settings.memory_factor)
    return model, max(measured, estimated)


def _warm_up(model: LoadedVersion | LoadedNetwork, batch: int) -> None:
    """One batch of synthetic images, so that ONNX Runtime's first-run allocations happen now rather than in
    the first request, and count in the entry's measured memory."""
    images = [(synthetic_image(), None)] * batch
    try:
        if isinstance(model, LoadedVersion):
            model.run(images, False, 0)
        else:
            model.run(images)
    except CoreError as error:  # the requests will fail the same way, each with its error
        LOGGER.warning("warm-up failed: %s", error)


def _preprocessing_field(field: str) -> str:
    return f"preprocessing.{field}" if field else "preprocessing"


def _field_of(error: InvalidArgumentError) -> str:
    """Pipeline errors name preprocessing fields; the Recognizer's name post_processings[i]."""
    field = error.field
    if field.startswith(("post_processings", "outputs")):
        return field
    return _preprocessing_field(field)


def validate(definition: VersionDefinition | NetworkDefinition, settings: RuntimeSettings) -> list[Violation]:
    """Every (field, message) violation of a definition, [] when it builds and runs.

    Builds what serving builds (session, pipeline, post-processing), then runs it once on a synthetic image,
    which shows what only real tensors tell: a classification output with fewer scores than labels, a
    detection tensor of the wrong shape, a network that does not run on its preprocessed input. Fields:
    ``preprocessing.inputs[0].image.target_size``, ``outputs[0].labels...`` and ``post_processings[0]...``
    as in the documents, ``network`` for the network file.
    """
    violations: list[Violation] = []
    try:
        parse_preprocessing(definition.preprocessing, definition.mean_files)
    except PreprocessingError as error:
        violations += [(_preprocessing_field(f), m) for f, m in error.violations]
    if isinstance(definition, VersionDefinition):
        try:
            VersionPostProcessor.from_json(definition.spec_outputs, definition.post_processings)
        except PostProcessingError as error:
            violations += error.violations
    if violations:
        return violations
    model: LoadedVersion | LoadedNetwork
    try:
        if isinstance(definition, VersionDefinition):
            model = build_version(definition, settings)
        else:
            model = build_network(definition, settings)
    except EngineError as error:
        return [(NETWORK_FIELD, error.message)]
    except InvalidArgumentError as error:
        return [(_field_of(error), error.message)]
    return _trial_run(model)


def _trial_run(model: LoadedVersion | LoadedNetwork) -> list[Violation]:
    images = [(synthetic_image(), None)]
    outcome: Any
    if isinstance(model, LoadedVersion):
        outcome = model.run(images, True, None)[0][0]
    else:
        outcome = model.run(images)[0][0]
    error: CoreError | None = outcome.error
    if error is None:
        return []
    if isinstance(error, EngineError):
        return [(NETWORK_FIELD, f"does not run on its preprocessed input: {error.message}")]
    if isinstance(error, InvalidArgumentError):
        return [(_field_of(error), error.message)]
    return [(_preprocessing_field(error.field), error.message)]
