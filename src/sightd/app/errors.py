"""Errors of the service layer, independent of the transport.

Each class carries a canonical gRPC status code name and what AIP-193 error details need: the fields at
fault (BadRequest), a machine-readable reason with metadata (ErrorInfo) and, for transient refusals, how
long to wait before retrying (RetryInfo). ``sightd.grpc.status`` turns them into ``google.rpc.Status``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Self

from sightd.errors import CoreError, ImageError, ImageTooLargeError, InvalidArgumentError

log = logging.getLogger("sightd.errors")
# Codes whose message may describe the server's insides (a stack, a path, ONNX Runtime's own words): the
# caller gets a generic message and an id that the log line carries too.
_CONCEALED_CODES = frozenset({"INTERNAL", "UNKNOWN", "DATA_LOSS"})


def quoted(value: str, limit: int = 64) -> str:
    """A client-supplied value for an error message, cut short: errors travel in trailers, which are
    small, and must not echo megabytes back."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


@dataclass(frozen=True)
class FieldViolation:
    """One field of a request and why its value is refused (dotted JSON path, as in v0.7 documents)."""

    field: str
    description: str


class ServiceError(Exception):
    """Base class: an error answered to the caller with ``code``; ``reason`` is UPPER_SNAKE_CASE."""

    code = "INTERNAL"
    default_reason = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str = "",
        violations: Sequence[FieldViolation] = (),
        metadata: Mapping[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.violations = tuple(violations)
        self.metadata = dict(metadata or {})
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


class BadRequestError(ServiceError):
    """The request's content is wrong; ``violations`` says where (one per problem)."""

    code = "INVALID_ARGUMENT"
    default_reason = "INVALID_ARGUMENT"

    @classmethod
    def of(cls, field: str, description: str, *, reason: str = "") -> Self:
        """A single-field error whose message repeats the field and the description."""
        message = f"{field}: {description}" if field else description
        return cls(message, reason=reason, violations=[FieldViolation(field, description)])

    @classmethod
    def of_violations(cls, violations: Sequence[FieldViolation], *, reason: str = "") -> Self:
        """Several problems at once; the message quotes the first and counts the others."""
        first = violations[0]
        message = f"{first.field}: {first.description}" if first.field else first.description
        if len(violations) > 1:
            message += f" (and {len(violations) - 1} more)"
        return cls(message, reason=reason, violations=violations)


class NotFoundError(ServiceError):
    """The resource does not exist, or the caller's key may not see it (the two are not told apart)."""

    code = "NOT_FOUND"
    default_reason = "NOT_FOUND"


class AlreadyExistsError(ServiceError):
    """A resource with that unique name exists."""

    code = "ALREADY_EXISTS"
    default_reason = "ALREADY_EXISTS"


class PermissionDeniedError(ServiceError):
    """The caller sees the resource (a public one) but may not change it."""

    code = "PERMISSION_DENIED"
    default_reason = "READ_ONLY"


class UnauthenticatedError(ServiceError):
    """No API key, or an unknown or revoked one."""

    code = "UNAUTHENTICATED"
    default_reason = "API_KEY_INVALID"


class FailedPreconditionError(ServiceError):
    """The system is not in a state that allows the call (a spec without a current version...)."""

    code = "FAILED_PRECONDITION"
    default_reason = "FAILED_PRECONDITION"


class ResourceExhaustedError(ServiceError):
    """A limit is reached: a full queue (with ``retry_after``) or a payload over its size limit."""

    code = "RESOURCE_EXHAUSTED"
    default_reason = "RESOURCE_EXHAUSTED"


class DeadlineExceededError(ServiceError):
    """The call's deadline passed before the work was done."""

    code = "DEADLINE_EXCEEDED"
    default_reason = "DEADLINE_EXCEEDED"


class UnavailableError(ServiceError):
    """Transient: the server is draining or a dependency is down; retrying later may succeed."""

    code = "UNAVAILABLE"
    default_reason = "UNAVAILABLE"


def from_core_error(error: CoreError) -> ServiceError:
    """The service error answering a failure of the compiled core (bad input is the caller's fault)."""
    if isinstance(error, ImageTooLargeError | ImageError | InvalidArgumentError):
        field = error.field
        violations = [FieldViolation(field, error.message)] if field else []
        return BadRequestError(str(error), reason=error.code, violations=violations)
    return ServiceError(str(error), reason=error.code)


def public_error(error: BaseException, *, context: str = "") -> ServiceError:
    """What the caller is told about an error. Service errors are answered as they are, errors of the core
    as :func:`from_core_error` maps them; internal errors (and any other exception) are logged with their
    details under a fresh id, and the caller gets only that id (``ErrorInfo.metadata["error_id"]``), so
    that nothing of the server's insides leaks while an operator can still find the log line."""
    if isinstance(error, CoreError):
        error = from_core_error(error)
    if isinstance(error, ServiceError) and error.code not in _CONCEALED_CODES:
        return error
    error_id = uuid.uuid4().hex[:16]
    log.error(
        "internal error",
        exc_info=(type(error), error, error.__traceback__),
        extra={"error_id": error_id, "context": context},
    )
    return ServiceError(
        f"internal error (id {error_id}; the server's log has the details)",
        reason="INTERNAL",
        metadata={"error_id": error_id},
    )
