# Type stubs of the compiled core (cpp/bindings). Each part of the core keeps its stubs in its own section.
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

# --- pipeline (bind_pipeline.cpp) ---

# --- postprocess (bind_postprocess.cpp) ---
