"""A recognition version ready to serve, built from its v0.7 documents.

``Recognizer.from_documents(network, preprocessing, spec_outputs, post_processings)`` loads the network into
an ONNX Runtime session, checks the preprocessing against it, prepares one post-processor per spec output and
joins them in the core's ``_core.Recognizer``: ``recognize`` is then one C++ call per batch (decode ->
preprocess -> ONNX Runtime -> post-processing -> NMS) with the GIL released. ``Recognizer.from_zoo(name)``
does the same for a public model of a built zoo. docs/engine.md documents the defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from typing_extensions import Buffer

from sightd import _core, engine
from sightd.errors import CoreError, InvalidArgumentError
from sightd.postprocessing import VersionPostProcessor, result_to_json
from sightd.preprocessing import parse_preprocessing
from sightd.zoo import installed

__all__ = ["DEFAULT_INTRA_OP_THREADS", "Recognizer", "SessionSettings", "result_json"]

# Each version's session (bench/pipeline.py, docs/engine.md): two intra-op threads, whose workers sleep
# between operators instead of spinning. Spinning workers take the cores the decoding threads need between
# runs (half the throughput on 2 cores); more threads per session oversubscribe a server with many versions.
DEFAULT_INTRA_OP_THREADS = min(2, os.cpu_count() or 1)
DEFAULT_ALLOW_SPINNING = False


@dataclass(frozen=True)
class SessionSettings:
    """How a version's network is run (engine.create_session's options)."""

    intra_op_threads: int = DEFAULT_INTRA_OP_THREADS
    inter_op_threads: int = 0
    optimization: engine.Optimization = "all"
    execution_provider: engine.Provider = "auto"
    device_id: int = 0
    allow_spinning: bool = DEFAULT_ALLOW_SPINNING


class Recognizer:
    """A recognition version: its network's pipeline and its post-processing, in one core object."""

    def __init__(
        self, pipeline: _core.Pipeline, post_processing: VersionPostProcessor, *, provider: str = ""
    ) -> None:
        self.pipeline = pipeline
        self.post_processing = post_processing
        self.provider = provider  # the session's execution provider, "CPUExecutionProvider"...
        self.core = _core.Recognizer(pipeline, post_processing.processors)

    @classmethod
    def from_documents(
        cls,
        network: str | os.PathLike[str] | bytes,
        preprocessing: object,
        spec_outputs: object,
        post_processings: object,
        *,
        mean_files: Mapping[str, bytes] | None = None,
        session: SessionSettings | None = None,
        reduced_decoding: bool = False,
        max_pixels: int = 100_000_000,
        pool: _core.ThreadPool | None = None,
    ) -> Recognizer:
        """Raises PreprocessingError / PostProcessingError listing every violation of a document,
        InvalidArgumentError naming the field when the documents do not fit the network (``inputs[0].image
        .target_size``, ``post_processings[0]`` for a tensor the network does not have) and EngineError when
        the network does not load."""
        spec = parse_preprocessing(preprocessing, mean_files)
        post_processing = VersionPostProcessor.from_json(spec_outputs, post_processings)
        settings = session or SessionSettings()
        onnx_session = engine.create_session(
            network,
            intra_op_threads=settings.intra_op_threads,
            inter_op_threads=settings.inter_op_threads,
            optimization=settings.optimization,
            execution_provider=settings.execution_provider,
            device_id=settings.device_id,
            allow_spinning=settings.allow_spinning,
        )
        # Only the outputs post-processing reads are computed and copied out; the other tensors it reads
        # are constant inputs (im_info), which the Recognizer takes from the preprocessing.
        network_outputs = {info.name for info in onnx_session.outputs}
        outputs = [name for name in post_processing.required_tensors if name in network_outputs]
        pipeline = _core.Pipeline(
            onnx_session, spec, outputs, reduced_decoding=reduced_decoding, max_pixels=max_pixels, pool=pool
        )
        return cls(pipeline, post_processing, provider=onnx_session.provider)

    @classmethod
    def from_zoo(
        cls,
        model: str,
        zoo: installed.Zoo | None = None,
        **options: Any,
    ) -> Recognizer:
        """A public model of a built zoo (``installed.load()`` when ``zoo`` is None); options as
        ``from_documents``. Raises KeyError for an unknown model, ZooNotBuiltError for a zoo not built."""
        zoo = zoo or installed.load()
        public = zoo.models[model]
        network = zoo.networks[public.network]
        return cls.from_documents(
            network.path,
            network.preprocessing,
            public.spec["outputs"],
            [public.post_processing],
            **options,
        )

    def recognize(
        self,
        images: Sequence[tuple[Buffer, _core.Roi | None]],
        *,
        show_discarded: bool = False,
        max_predictions: int | None = None,
        times: _core.StageTimes | None = None,
    ) -> list[_core.RecognitionResult]:
        """One result per image, in order: ``.ok`` and ``.outputs`` (one LabelsResult per spec output), or
        ``.error``. One core call for the whole batch, with the GIL released; ``times`` receives the batch's
        stage durations."""
        if isinstance(max_predictions, bool):
            raise InvalidArgumentError("must be a non-negative integer or None", field="max_predictions")
        return self.core.recognize(
            images, show_discarded=show_discarded, max_predictions=max_predictions, times=times
        )


def result_json(result: _core.RecognitionResult) -> dict[str, Any]:
    """The v0.7 inference result ``{"outputs": [{"labels": {"predicted": [...], "discarded": [...]}}]}`` of a
    successful image; raises the image's error otherwise."""
    if not result.ok:
        error = result.error
        raise error if error is not None else CoreError("recognition failed")
    return result_to_json(result.outputs)
