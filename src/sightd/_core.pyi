# Type stubs of the compiled core (cpp/bindings). Each part of the core keeps its stubs in its own section.
class ErrorCode:
    INVALID_ARGUMENT: ErrorCode
    INVALID_IMAGE: ErrorCode
    IMAGE_TOO_LARGE: ErrorCode
    ENGINE: ErrorCode
    INTERNAL: ErrorCode

# --- image (bind_image.cpp) ---

# --- preprocess (bind_preprocess.cpp) ---

# --- engine (bind_engine.cpp) ---

# --- pipeline (bind_pipeline.cpp) ---

# --- postprocess (bind_postprocess.cpp) ---
