"""What the runtime is asked to run (versions, networks, images), what it answers, and its settings."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy.typing as npt

from sightd import _core
from sightd.config import Settings
from sightd.errors import CoreError
from sightd.recognition import SessionSettings, result_json
from sightd.zoo import installed

MiB = 1 << 20


@dataclass(frozen=True)
class VersionDefinition:
    """Everything needed to build the Recognizer of one recognition version.

    ``key`` identifies the built Recognizer in the cache: two definitions with the same key must describe
    the same thing (``f"version:{id}:{network_sha256}"``).
    """

    key: str
    network_path: Path  # the ONNX file (a blob)
    preprocessing: Mapping[str, Any]  # the network's v0.7 preprocessing document (with extensions)
    mean_files: Mapping[str, bytes]  # mean file name -> bytes
    spec_outputs: Sequence[Mapping[str, Any]]  # the recognition spec's v0.7 `outputs`
    post_processings: Sequence[Mapping[str, Any]]  # the version's v0.7 `post_processings`

    @classmethod
    def from_zoo(cls, model: str, zoo: installed.Zoo | None = None) -> VersionDefinition:
        """A public model of a built zoo (``installed.load()`` when ``zoo`` is None), keyed by its name and
        its network's digest; as ``Recognizer.from_zoo``, for the runtime. Raises KeyError for an unknown
        model, ZooNotBuiltError for a zoo not built."""
        zoo = zoo or installed.load()
        public = zoo.models[model]
        network = zoo.networks[public.network]
        return cls(
            key=f"version:{model}:{network.sha256}",
            network_path=network.path,
            preprocessing=network.preprocessing,
            mean_files={},
            spec_outputs=public.spec["outputs"],
            post_processings=[public.post_processing],
        )


@dataclass(frozen=True)
class NetworkDefinition:
    """A network for raw inference (v0.7 network inference) and validation; ``key`` as for versions, and
    distinct from every version's key (``f"network:{id}:{sha256}"``)."""

    key: str
    network_path: Path
    preprocessing: Mapping[str, Any]
    mean_files: Mapping[str, bytes]


@dataclass(frozen=True)
class ImageRequest:
    """One encoded image (URL or base64 already resolved by the caller) and its optional region."""

    data: bytes
    roi: _core.Roi | None = None


class ImageOutcome:
    """One image's recognition: its result, or its error (``error``).

    The result comes in two forms. ``message`` is the serialized ``sightd.v1.RecognitionResult``, made by
    the core on the worker thread; it is None where the core cannot serialize the result
    (``_core.RecognitionResult.message``). ``result`` is the v0.7 document
    ``{"outputs": [{"labels": {...}}]}``, built from the core's result when first read. The gRPC service
    answers ``message`` as it is, and only tasks and the callers that read ``result`` build the document.
    """

    __slots__ = ("_found", "_result", "error", "message")

    def __init__(
        self, found: _core.RecognitionResult | None = None, *, error: CoreError | None = None
    ) -> None:
        """``found``: the core's successful result (``message`` is read from it now); ``error``: the image's
        error."""
        self._found = found
        self._result: dict[str, Any] | None = None
        self.error = error
        self.message: bytes | None = found.message if found is not None else None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def result(self) -> dict[str, Any] | None:
        if self._result is None and self._found is not None:
            self._result = result_json(self._found)
        return self._result


@dataclass(frozen=True)
class TensorsOutcome:
    """One image's raw network inference: the asked output tensors by name (this image's rows, without the
    batch dimension when the preprocessing has ``batched_output``) or its error."""

    tensors: dict[str, npt.NDArray[Any]] = field(default_factory=dict)
    error: CoreError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# Measured with bench/runtime.py on the 2-core development machine (docs/runtime.md): two batches at once
# (one decodes while the other is in ONNX Runtime) beat one; batches of 8 run up to 1.6 times faster per
# image than single images on a quiet machine; a delay only slows lone requests down, since batches grow
# anyway while the workers are busy.
DEFAULT_WORKERS = 2
DEFAULT_MAX_BATCH = 8
DEFAULT_MAX_BATCH_DELAY_US = 0


def default_intra_op_threads(workers: int) -> int:
    """ONNX Runtime threads per run when each of ``workers`` runs at once: the cores shared out."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


@dataclass(frozen=True)
class RuntimeSettings:
    """How the runtime batches, queues, runs and caches (docs/runtime.md)."""

    max_batch: int = DEFAULT_MAX_BATCH  # most images in one batch (a larger request runs alone, whole)
    # At most this many for a model whose session runs on the CPU (None: max_batch there too). The service
    # sets 1 (config cpu_max_batch): measured, batching costs time per image on the CPU (docs/runtime.md).
    cpu_max_batch: int | None = None
    max_batch_delay_us: int = DEFAULT_MAX_BATCH_DELAY_US  # how long the oldest request waits for company
    queue_depth: int = 256  # requests waiting per version (and per network)
    max_queued_requests: int = 1024  # requests waiting, all versions together
    max_queued_bytes: int = 1024 * MiB  # encoded image bytes waiting, all versions together
    workers: int = DEFAULT_WORKERS  # batches running at once (threads; the core releases the GIL)
    cache_bytes: int = 4096 * MiB  # memory the loaded models may take (estimated, see memory_factor)
    # An entry's size is at least its ONNX file's size times this (weights, ONNX Runtime's prepacked copies
    # and session state measured at 2.9 to 3.5 times the file on the zoo), or the resident memory its load
    # and warm-up added, when that is more.
    memory_factor: float = 3.5
    warmup: bool = True  # run one batch of max_batch synthetic images at load (and measure its memory)
    load_threads: int = 1  # models loading at once, on their own threads (never on the inference workers)
    max_pixels: int = 100_000_000  # decoding refuses larger images (ImageTooLargeError)
    # Threads decoding a batch's images besides its worker thread: None, the core's shared pool (cores - 1);
    # a number, a pool of that many for the runtime's models (0: each batch decodes on its worker alone).
    decode_threads: int | None = None
    # A lone small image of a model whose single-image batches take less than this on average runs on the
    # event loop's thread instead of a worker (0: never); see docs/runtime.md "Threads".
    inline_max_us: int = 250
    # ONNX Runtime options of every session; None: the defaults, with intra_op_threads the cores shared out
    # among the workers (session_settings).
    session: SessionSettings | None = None

    def __post_init__(self) -> None:
        for name in (
            "max_batch",
            "queue_depth",
            "max_queued_requests",
            "max_queued_bytes",
            "workers",
            "cache_bytes",
            "load_threads",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"RuntimeSettings.{name} must be at least 1")
        if self.max_batch_delay_us < 0:
            raise ValueError("RuntimeSettings.max_batch_delay_us must not be negative")
        if self.cpu_max_batch is not None and self.cpu_max_batch < 1:
            raise ValueError("RuntimeSettings.cpu_max_batch must be at least 1")
        if self.inline_max_us < 0:
            raise ValueError("RuntimeSettings.inline_max_us must not be negative")
        if self.decode_threads is not None and self.decode_threads < 0:
            raise ValueError("RuntimeSettings.decode_threads must not be negative")
        if self.memory_factor <= 0:
            raise ValueError("RuntimeSettings.memory_factor must be positive")

    @property
    def session_settings(self) -> SessionSettings:
        """``session``, or the defaults with ``intra_op_threads`` = cores // workers (at least 1): each
        worker's run has its share of the cores, and the workers together use them all without more threads
        than cores (measured: docs/runtime.md "Threads")."""
        if self.session is not None:
            return self.session
        return SessionSettings(intra_op_threads=default_intra_op_threads(self.workers))

    @property
    def max_batch_delay(self) -> float:
        return self.max_batch_delay_us / 1e6

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> RuntimeSettings:
        """The runtime part of the service's configuration (queue_depth, max_batch, cpu_max_batch,
        max_batch_delay_us, inference_workers, intra_op_threads, session_cache_bytes); the global queue bound
        is four versions' worth."""
        values: dict[str, Any] = {
            "max_batch": settings.max_batch,
            "cpu_max_batch": settings.cpu_max_batch,
            "max_batch_delay_us": settings.max_batch_delay_us,
            "workers": settings.inference_workers,
            "queue_depth": settings.queue_depth,
            "max_queued_requests": 4 * settings.queue_depth,
            "cache_bytes": settings.session_cache_bytes,
        }
        if settings.intra_op_threads:
            values["session"] = SessionSettings(intra_op_threads=settings.intra_op_threads)
        values.update(overrides)
        return cls(**values)
