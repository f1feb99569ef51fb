"""How failures of the runtime and of one image become the service's errors (codes, reasons, fields)."""

from __future__ import annotations

import logging

import pytest

from sightd.app import inputs
from sightd.app.errors import ServiceError, public_error
from sightd.app.inference import image_error, runtime_error
from sightd.errors import EngineError, ImageError, ImageTooLargeError, InvalidArgumentError
from sightd.postprocessing import PostProcessingError
from sightd.preprocessing import PreprocessingError
from sightd.runtime import DeadlineExceededError, QueueFullError, RuntimeStoppedError

URL_IMAGE = inputs.PreparedImage(None, "https://images.example/cat.jpg", None)
INLINE_IMAGE = inputs.PreparedImage(b"...", None, None)


def service(error: BaseException) -> ServiceError:
    assert isinstance(error, ServiceError)
    return error


def test_refusals_of_the_runtime() -> None:
    full = service(runtime_error(QueueFullError("the queue of this version is full", retry_after=0.25)))
    assert (full.code, full.reason, full.retry_after) == ("RESOURCE_EXHAUSTED", "QUEUE_FULL", 0.25)
    assert service(runtime_error(DeadlineExceededError("late"))).code == "DEADLINE_EXCEEDED"
    stopping = service(runtime_error(RuntimeStoppedError("stopping")))
    assert (stopping.code, stopping.reason) == ("UNAVAILABLE", "STOPPING")


def test_a_version_that_does_not_load_fails_its_precondition() -> None:
    for failure in (
        PostProcessingError([("post_processings[0].classification.output_tensor", "not an output")]),
        PreprocessingError([("inputs[0].image.target_size", "does not fit")]),
        InvalidArgumentError("reads tensor 'scores'", field="post_processings[0]"),
    ):
        mapped = service(runtime_error(failure))
        assert (mapped.code, mapped.reason) == ("FAILED_PRECONDITION", "VERSION_MISMATCH")
        assert [v.field for v in mapped.violations] == [failure.field]
    assert isinstance(runtime_error(EngineError("cannot load the model: /data/blobs/ab/cd")), EngineError)


def test_one_image_failures() -> None:
    corrupt = service(image_error(ImageError("not an image"), URL_IMAGE))
    assert (corrupt.code, corrupt.reason, [v.field for v in corrupt.violations]) == (
        "INVALID_ARGUMENT",
        "INVALID_IMAGE",
        ["inputs[0].image.source"],
    )
    huge = service(image_error(ImageTooLargeError("too many pixels"), INLINE_IMAGE))
    assert (huge.reason, [v.field for v in huge.violations]) == ("IMAGE_TOO_LARGE", ["inputs[0].image"])
    region = service(image_error(InvalidArgumentError("outside the image", field="bbox.xmax"), INLINE_IMAGE))
    assert [v.field for v in region.violations] == ["inputs[0].image.bbox.xmax"]
    mismatch = service(
        image_error(
            InvalidArgumentError("3 scores for 4 labels", field="post_processings[0].thresholds"), URL_IMAGE
        )
    )
    assert (mismatch.code, mismatch.reason) == ("FAILED_PRECONDITION", "VERSION_MISMATCH")


def test_internal_failures_are_told_by_id_only(caplog: pytest.LogCaptureFixture) -> None:
    secret = "cannot load the model: /var/lib/sightd/blobs/ab/cdef: protobuf parsing failed"
    with caplog.at_level(logging.ERROR, logger="sightd.errors"):
        told = public_error(runtime_error(EngineError(secret)))
    assert (told.code, told.reason) == ("INTERNAL", "INTERNAL")
    assert secret not in told.message
    assert "/var/lib" not in told.message
    error_id = told.metadata["error_id"]
    assert error_id in told.message
    (record,) = [r for r in caplog.records if getattr(r, "error_id", "") == error_id]
    assert record.exc_info is not None
    assert secret in str(record.exc_info[1])
    assert public_error(ValueError("a bug")).code == "INTERNAL"
    client_fault = service(image_error(ImageError("truncated"), INLINE_IMAGE))
    assert public_error(client_fault) is client_fault
