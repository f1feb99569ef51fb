"""Exceptions raised by sightd's core and its Python layers.

The compiled core raises these classes (its binding translates its C++ error type), so callers catch one
family whatever layer failed. ``field`` names the offending request or spec field when there is one, in
the dotted form of the v0.7 documents (``inputs[0].image.target_size``, ``bbox.xmin``).
"""

from __future__ import annotations


class CoreError(Exception):
    """Base class; also raised as is for internal errors of the core."""

    code = "INTERNAL"

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidArgumentError(CoreError):
    """A parameter, a spec or a request field is wrong."""

    code = "INVALID_ARGUMENT"


class ImageError(CoreError):
    """Image bytes that are empty, truncated, corrupt or of an unsupported format."""

    code = "INVALID_IMAGE"


class ImageTooLargeError(ImageError):
    """The image header announces more pixels than the configured limit."""

    code = "IMAGE_TOO_LARGE"


class EngineError(CoreError):
    """ONNX Runtime could not load a model or run it."""

    code = "ENGINE"
