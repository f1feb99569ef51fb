# Type stubs of the compiled core (cpp/bindings). Each part of the core keeps its stubs in its own section.
from collections.abc import Mapping, Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray
from typing_extensions import Buffer

from sightd.errors import CoreError

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
# Decoding and regions of interest; docs/images.md has the conversions, limits and rounding rules.

class ImageFormat:
    JPEG: ImageFormat
    PNG: ImageFormat
    BMP: ImageFormat
    WEBP: ImageFormat
    TIFF: ImageFormat
    PNM: ImageFormat
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...

class ImageHeader:
    """Format, size (as stored), EXIF orientation and sample layout, read without decoding pixels."""

    @property
    def format(self) -> ImageFormat: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def orientation(self) -> int: ...
    @property
    def channels(self) -> int: ...
    @property
    def bit_depth(self) -> int: ...
    @property
    def oriented_width(self) -> int: ...
    @property
    def oriented_height(self) -> int: ...

def read_image_header(data: Buffer) -> ImageHeader:
    """Raises ImageError for empty, unrecognised, corrupt or truncated headers."""

def check_pixel_limit(header: ImageHeader, max_pixels: int) -> None:
    """Raises ImageTooLargeError when width * height > max_pixels."""

def decode_image(
    data: Buffer,
    *,
    max_pixels: int = 100_000_000,
    min_width: int = 0,
    min_height: int = 0,
    background: tuple[int, int, int] = (255, 255, 255),
) -> tuple[NDArray[np.uint8], int]:
    """(HxWx3 uint8 BGR image, JPEG reduction 1/2/4/8). `background` is (B, G, R) under transparency;
    min_width/min_height (oriented pixels) allow a reduced JPEG decode. Releases the GIL."""

class Roi:
    bbox: tuple[float, float, float, float] | None
    polygon: list[tuple[float, float]]
    crop_uniform_background: bool
    uniform_tolerance: int
    def __init__(
        self,
        *,
        bbox: tuple[float, float, float, float] | None = None,
        polygon: Sequence[tuple[float, float]] | None = None,
        crop_uniform_background: bool = False,
        uniform_tolerance: int = 8,
    ) -> None: ...

def validate_roi(roi: Roi) -> None:
    """Raises InvalidArgumentError naming the field ("bbox.xmin", "polygon[2].y", ...)."""

def apply_roi(
    bgr: NDArray[np.uint8], roi: Roi, fill: tuple[float, float, float] | None = None
) -> tuple[NDArray[np.uint8], Transform]:
    """The roi's crop of an HxWx3 uint8 image (a view for bbox and trimming) and its Transform."""

# --- preprocess (bind_preprocess.cpp) ---
class ResizeType:
    SQUASH: ResizeType
    CROP: ResizeType
    NETWORK: ResizeType
    LETTERBOX: ResizeType
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...
    def __init__(self, value: int) -> None: ...

class DataType:
    FLOAT32: DataType
    UINT8: DataType
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...
    def __init__(self, value: int) -> None: ...

class DimensionOrder:
    NCHW: DimensionOrder
    NHWC: DimensionOrder
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...
    def __init__(self, value: int) -> None: ...

class ColorChannels:
    BGR: ColorChannels
    RGB: ColorChannels
    L: ColorChannels
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...
    def __init__(self, value: int) -> None: ...

class Interpolation:
    LINEAR: Interpolation
    AREA: Interpolation
    CUBIC: Interpolation
    NEAREST: Interpolation
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...
    def __init__(self, value: int) -> None: ...

class LetterboxAlign:
    CENTER: LetterboxAlign
    TOP_LEFT: LetterboxAlign
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...
    def __init__(self, value: int) -> None: ...

class MeanImage:
    """A mean file's values, planar (C, H, W); per channel when H = W = 1."""

    def __init__(self, values: npt.ArrayLike) -> None: ...
    @property
    def channels(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def width(self) -> int: ...
    @property
    def values(self) -> npt.NDArray[np.float32]: ...
    @property
    def per_channel(self) -> bool: ...

def parse_mean_file(content: bytes) -> MeanImage:
    """Caffe .binaryproto or NumPy .npy; raises InvalidArgumentError (field "mean_file")."""

class ImageInputSpec:
    """One image input (preprocess.hpp); list fields are copies: assign whole lists."""

    tensor_name: str
    input_index: int
    resize_type: ResizeType
    data_type: DataType
    dimension_order: DimensionOrder
    pixel_scaling: float
    mean_file: MeanImage | None
    target_width: int
    target_height: int
    color_channels: ColorChannels
    mean: list[float]
    std: list[float]
    crop_ratio: float
    pad_value: list[float]
    letterbox_align: LetterboxAlign
    max_size: int
    stride: int
    interpolation: Interpolation
    antialias: bool
    def __init__(self) -> None: ...
    @property
    def channel_count(self) -> int: ...

class ConstantValue:
    """A number, or dimension `dimension` of image input `tensor_name`'s per-image tensor."""

    number: float
    tensor_name: str
    dimension: int
    @overload
    def __init__(self, number: float) -> None: ...
    @overload
    def __init__(self, tensor_name: str, dimension: int) -> None: ...

class ConstantInputSpec:
    tensor_name: str
    input_index: int
    shape: list[int]
    data: list[ConstantValue]
    def __init__(self) -> None: ...

class PreprocessingSpec:
    image_inputs: list[ImageInputSpec]
    constant_inputs: list[ConstantInputSpec]
    batched_output: bool
    def __init__(self) -> None: ...

def validate_preprocessing(spec: PreprocessingSpec) -> None:
    """Raises InvalidArgumentError naming the field."""

class ResizePlan:
    @property
    def resized_width(self) -> int: ...
    @property
    def resized_height(self) -> int: ...
    @property
    def offset_x(self) -> int: ...
    @property
    def offset_y(self) -> int: ...
    @property
    def tensor_width(self) -> int: ...
    @property
    def tensor_height(self) -> int: ...

def plan_resize(spec: ImageInputSpec, src_width: int, src_height: int) -> ResizePlan: ...
def image_tensor_shape(spec: ImageInputSpec, plan: ResizePlan) -> list[int]: ...
def neutral_colour(spec: ImageInputSpec) -> tuple[float, float, float] | None:
    """The (B, G, R) pixel colour preprocessing maps to zero; None without a mean."""

class ImagePreprocessor:
    def __init__(self, spec: ImageInputSpec) -> None: ...
    @property
    def spec(self) -> ImageInputSpec: ...
    def write(self, bgr: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[Any], Transform]:
        """One image's tensor (no batch dimension) from (H, W, 3) uint8 BGR pixels, and its transform."""

class PreparedImage:
    """One image of a prepared batch: ok, or why it failed (that image alone)."""

    @property
    def ok(self) -> bool: ...
    @property
    def error_code(self) -> ErrorCode | None: ...
    @property
    def error_field(self) -> str: ...
    @property
    def error_message(self) -> str: ...
    @property
    def transforms(self) -> list[Transform]:
        """One per image input, in the spec's order; empty when not ok."""
    @property
    def group(self) -> int: ...
    @property
    def row(self) -> int: ...

class PreparedGroup:
    @property
    def images(self) -> list[int]:
        """Indices into the request list, in row order."""
    @property
    def feeds(self) -> dict[str, npt.NDArray[Any]]:
        """Image inputs then constant inputs, by tensor name; the first dimension is the group's size."""

class PreparedBatch:
    @property
    def images(self) -> list[PreparedImage]: ...
    @property
    def groups(self) -> list[PreparedGroup]: ...

class BatchPreprocessor:
    def __init__(
        self,
        spec: PreprocessingSpec,
        *,
        reduced_decoding: bool = False,
        max_pixels: int = 100_000_000,
        threads: int | None = None,
    ) -> None: ...
    @property
    def spec(self) -> PreprocessingSpec: ...
    def prepare(self, images: Sequence[tuple[Buffer, Roi | None]]) -> PreparedBatch:
        """Decodes and preprocesses the images into same-shape groups (GIL released; see batch.hpp)."""

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
    allow_spinning: bool
    def __init__(
        self,
        *,
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        optimization: GraphOptimization = ...,
        execution_provider: str = "auto",
        device_id: int = 0,
        allow_spinning: bool = True,
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

class StageTimes:
    """Seconds one batch spent in each stage (steady clock, measured on the calling thread), filled in by
    ``Pipeline.run(..., times=)`` (decode_preprocess, inference) and ``Recognizer.recognize(..., times=)``
    (all three). One object per call: the call overwrites it."""

    def __init__(self) -> None: ...
    @property
    def decode_preprocess(self) -> float: ...
    @property
    def inference(self) -> float: ...
    @property
    def postprocess(self) -> float: ...

class ImageResult:
    """One image's outcome of Pipeline.run: outputs by name (this image's rows only) and transforms, or
    the error of this image."""

    @property
    def ok(self) -> bool: ...
    @property
    def error_code(self) -> ErrorCode: ...
    @property
    def error_field(self) -> str: ...
    @property
    def error_message(self) -> str: ...
    @property
    def error(self) -> CoreError | None: ...
    @property
    def transforms(self) -> list[Transform]: ...
    @property
    def outputs(self) -> dict[str, npt.NDArray[Any]]: ...
    @property
    def constants(self) -> dict[str, npt.NDArray[Any]]:
        """This image's constant inputs as fed (float32, without the batch dimension), by tensor name."""

class Pipeline:
    """Encoded images -> decode -> preprocess -> ONNX Runtime -> per-image outputs; run() releases the GIL."""

    def __init__(
        self,
        session: Session,
        spec: PreprocessingSpec,
        output_names: Sequence[str] = ...,
        reduced_decoding: bool = False,
        max_pixels: int = 100000000,
        pool: ThreadPool | None = None,
    ) -> None: ...
    @property
    def output_names(self) -> list[str]: ...
    @property
    def max_batch(self) -> int: ...
    @property
    def spec(self) -> PreprocessingSpec: ...
    def run(
        self,
        images: Sequence[tuple[bytes | bytearray | memoryview | npt.NDArray[Any], Roi | None] | bytes],
        *,
        times: StageTimes | None = None,
    ) -> list[ImageResult]: ...

class RecognitionResult:
    """One image's outcome of Recognizer.recognize: one LabelsResult per spec output, or its error."""

    @property
    def ok(self) -> bool: ...
    @property
    def error_code(self) -> ErrorCode: ...
    @property
    def error_field(self) -> str: ...
    @property
    def error_message(self) -> str: ...
    @property
    def error(self) -> CoreError | None: ...
    @property
    def outputs(self) -> list[LabelsResult]: ...
    @property
    def message(self) -> bytes | None:
        """The serialized ``sightd.v1.RecognitionResult`` of the outputs, as the gRPC service answers it
        (built at each read); None for an error, or for a value its field cannot hold (a label id beyond
        int32, a label name that is not UTF-8)."""

class Recognizer:
    """A Pipeline plus one PostProcessor per spec output: recognize() is decode -> preprocess -> ONNX Runtime
    -> post-processing -> NMS for a whole batch in one call, with the GIL released."""

    def __init__(
        self, pipeline: Pipeline, post_processors: PostProcessor | Sequence[PostProcessor]
    ) -> None: ...
    @property
    def output_count(self) -> int: ...
    def recognize(
        self,
        images: Sequence[tuple[Buffer, Roi | None] | Buffer],
        show_discarded: bool = False,
        max_predictions: int | None = None,
        *,
        times: StageTimes | None = None,
    ) -> list[RecognitionResult]: ...

# --- postprocess (bind_postprocess.cpp) ---

class RoiType:
    NONE: RoiType
    BBOX: RoiType

class Activation:
    NONE: Activation
    SOFTMAX: Activation
    SIGMOID: Activation

class DetectionFormat:
    ANCHORED: DetectionFormat
    DIRECT: DetectionFormat
    YOLO: DetectionFormat

class SpecLabel:
    id: int
    name: str
    def __init__(self, id: int, name: str) -> None: ...

class LabelsSpec:
    roi: RoiType
    exclusive: bool
    labels: list[SpecLabel]
    def __init__(self) -> None: ...

class ClassificationOutput:
    output_tensor: str
    activation: Activation
    def __init__(self) -> None: ...

class AnchoredOutput:
    anchors_tensor: str
    scores_tensor: str
    offsets_tensor: str
    legacy_plus_one: bool
    def __init__(self) -> None: ...

class DirectOutput:
    boxes_tensor: str
    scores_tensor: str
    classes_tensor: str
    num_detections_tensor: str
    def __init__(self) -> None: ...

class YoloHead:
    output_tensor: str
    anchors: list[float]
    def __init__(self, output_tensor: str, anchors: list[float]) -> None: ...

class YoloOutput:
    heads: list[YoloHead]
    class_activation: Activation
    def __init__(self) -> None: ...

class DetectionOutput:
    format: DetectionFormat
    anchored: AnchoredOutput
    direct: DirectOutput
    yolo: YoloOutput
    discard_threshold: float
    nms_threshold: float
    normalize_wrt_tensor: str
    nms_class_agnostic: bool
    def __init__(self) -> None: ...

class PostProcessingConfig:
    """A spec output plus its post-processing (postprocess.hpp); fields are copied in and out."""

    spec: LabelsSpec
    classification: ClassificationOutput
    detection: DetectionOutput
    thresholds: list[float]
    class_indices: list[int]
    def __init__(self) -> None: ...

class BBox:
    @property
    def xmin(self) -> float: ...
    @property
    def ymin(self) -> float: ...
    @property
    def xmax(self) -> float: ...
    @property
    def ymax(self) -> float: ...

class Prediction:
    @property
    def label_index(self) -> int: ...
    @property
    def label_id(self) -> int: ...
    @property
    def label_name(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def threshold(self) -> float: ...
    @property
    def region_id(self) -> int: ...
    @property
    def bbox(self) -> BBox: ...

class LabelsResult:
    @property
    def has_roi(self) -> bool: ...
    @property
    def predicted(self) -> list[Prediction]: ...
    @property
    def discarded(self) -> list[Prediction]: ...

class PostProcessor:
    """Prepared post-processing of one spec output; process() releases the GIL and is thread-safe."""

    def __init__(self, config: PostProcessingConfig) -> None: ...
    @property
    def thresholds(self) -> list[float]: ...
    @property
    def required_tensors(self) -> list[str]: ...
    def process(
        self,
        outputs: dict[str, NDArray[Any]],
        transform: Transform,
        show_discarded: bool = False,
        max_predictions: int = -1,
    ) -> LabelsResult: ...

def nms(
    boxes: NDArray[Any],
    scores: NDArray[Any],
    classes: NDArray[Any] | None = None,
    iou_threshold: float = 0.3,
) -> NDArray[np.int64]:
    """Greedy NMS of boxes [N, 4] (x1, y1, x2, y2): kept indices by decreasing score (see nms.hpp)."""
