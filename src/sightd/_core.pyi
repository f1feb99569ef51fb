# Type stubs of the compiled core (cpp/bindings). Each part of the core keeps its stubs in its own section.
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from typing_extensions import Buffer

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

# --- engine (bind_engine.cpp) ---

# --- pipeline (bind_pipeline.cpp) ---

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
