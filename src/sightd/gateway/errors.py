"""Errors as HTTP answers: gRPC status codes mapped to HTTP codes, bodies ``{"error": message, ...}``.

The mapping is grpc-gateway's, with one change made for the official client: RESOURCE_EXHAUSTED with a
RetryInfo (a full queue, too many tasks, too many URL fetches: load, not a fault of the request) answers
503 with ``Retry-After``, which the client retries with back-off, where 429 would fail the call at once
(it never retries a 4xx). RESOURCE_EXHAUSTED without RetryInfo (a message over the size limit) is 413.
Bad input is always a 4xx: a 5xx makes the official client retry for a minute (and deepomatic-cli forever).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import grpc

from sightd.app.errors import FieldViolation
from sightd.grpc.status import details_of

_HTTP_STATUS = {
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}


class HttpError(Exception):
    """An error answer: HTTP status, the gRPC code name, a message, and AIP-193's details."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str = "INVALID_ARGUMENT",
        reason: str = "",
        violations: Sequence[FieldViolation] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.reason = reason or code
        self.violations = tuple(violations)
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        document: dict[str, Any] = {"error": self.message, "code": self.code, "reason": self.reason}
        if self.violations:
            document["field_violations"] = [
                {"field": v.field, "description": v.description} for v in self.violations
            ]
        return document

    def headers(self) -> list[tuple[bytes, bytes]]:
        if self.retry_after is None:
            return []
        return [(b"retry-after", str(max(1, math.ceil(self.retry_after))).encode())]


def bad_request(message: str, *, violations: Sequence[FieldViolation] = ()) -> HttpError:
    return HttpError(400, message, violations=violations)


def not_found(message: str = "not found") -> HttpError:
    return HttpError(404, message, code="NOT_FOUND")


def from_rpc_error(error: grpc.aio.AioRpcError) -> HttpError:
    """The HTTP answer of a failed gRPC call, with the details the server packed (docs/api.md)."""
    details = details_of(error)
    code = details.code
    status = _HTTP_STATUS.get(code, 500)
    retry_after = details.retry_after
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and retry_after is not None:
        status = 503
    message = details.message or code.name.lower().replace("_", " ")
    if code == grpc.StatusCode.UNAVAILABLE and not details.reason:
        # No details: the channel itself failed (the service is down or unreachable), not the service.
        message = "the recognition service is unavailable; retry in a moment"
        retry_after = 1.0 if retry_after is None else retry_after
    return HttpError(
        status,
        message,
        code=code.name,
        reason=details.reason,
        violations=details.violations,
        retry_after=retry_after,
    )
