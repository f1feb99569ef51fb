# Type stubs of the compiled core (cpp/bindings). Each part of the core keeps its stubs in its own section.
from collections.abc import Mapping, Sequence
from typing import Any

import numpy.typing as npt

class ErrorCode:
    INVALID_ARGUMENT: ErrorCode
    INVALID_IMAGE: ErrorCode
    IMAGE_TOO_LARGE: ErrorCode
    ENGINE: ErrorCode
    INTERNAL: ErrorCode

class Transform:
    """Geometry from decoded image pixels to an input tensor: crop, scale, then offset (see transform.hpp)."""

    image_width: int
    image_height: int
    crop_x: float
    crop_y: float
    crop_width: float
    crop_height: float
    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float
    tensor_width: int
    tensor_height: int
    def __init__(self) -> None: ...
    def to_image_x(self, tensor_x: float) -> float: ...
    def to_image_y(self, tensor_y: float) -> float: ...

# --- image (bind_image.cpp) ---

# --- preprocess (bind_preprocess.cpp) ---

# --- engine (bind_engine.cpp) ---
def load_onnxruntime(library_path: str) -> None: ...
def onnxruntime_loaded() -> bool: ...
def onnxruntime_library_path() -> str: ...
def onnxruntime_version() -> str: ...
def available_providers() -> list[str]: ...
def take_onnxruntime_log() -> list[tuple[int, str, str]]:
    """ONNX Runtime's queued messages: (severity 2 warning / 3 error / 4 fatal, category, message)."""

class GraphOptimization:
    DISABLED: GraphOptimization
    BASIC: GraphOptimization
    EXTENDED: GraphOptimization
    ALL: GraphOptimization

class SessionOptions:
    intra_op_threads: int
    inter_op_threads: int
    optimization: GraphOptimization
    execution_provider: str
    device_id: int
    def __init__(
        self,
        *,
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        optimization: GraphOptimization = ...,
        execution_provider: str = "auto",
        device_id: int = 0,
    ) -> None: ...

class TensorInfo:
    """A graph input or output: -1 in shape for a dynamic dimension, whose symbolic name is in dim_names."""

    @property
    def name(self) -> str: ...
    @property
    def dtype(self) -> str: ...
    @property
    def element_type(self) -> int: ...
    @property
    def shape(self) -> list[int]: ...
    @property
    def dim_names(self) -> list[str]: ...

class Session:
    """An ONNX Runtime session; run() is thread-safe and releases the GIL."""

    @staticmethod
    def from_path(path: str, options: SessionOptions = ...) -> Session: ...
    @staticmethod
    def from_bytes(model: bytes | bytearray | memoryview, options: SessionOptions = ...) -> Session: ...
    @property
    def inputs(self) -> list[TensorInfo]: ...
    @property
    def outputs(self) -> list[TensorInfo]: ...
    @property
    def provider(self) -> str: ...
    @property
    def fallback_reason(self) -> str: ...
    def run(
        self, feeds: Mapping[str, npt.ArrayLike], output_names: Sequence[str] = ()
    ) -> list[npt.NDArray[Any]]: ...

# --- pipeline (bind_pipeline.cpp) ---
class ThreadPool:
    """Worker threads for decoding and preprocessing (besides the calling thread; 0 is allowed)."""

    def __init__(self, threads: int) -> None: ...
    @property
    def size(self) -> int: ...

# --- postprocess (bind_postprocess.cpp) ---
