"""``google.rpc.Status`` with AIP-193 details (BadRequest, ErrorInfo, RetryInfo) for grpcio-status.

The server answers every error through :func:`to_status`, so clients in any language read the same
details from the ``grpc-status-details-bin`` trailer; :func:`details_of` reads them back (tests, the REST
gateway).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from sightd.app.errors import FieldViolation, ServiceError
from sightd.v1 import common_pb2

# ErrorInfo.domain of every error sightd raises (AIP-193: the service's name).
DOMAIN = "sightd"


def _code_number(name: str) -> int:
    number: int = code_pb2.Code.Value(name)
    return number


def build_status(
    code: str,
    message: str,
    *,
    reason: str = "",
    violations: Sequence[FieldViolation] = (),
    metadata: Mapping[str, str] | None = None,
    retry_after: float | None = None,
) -> status_pb2.Status:
    """A google.rpc.Status of the code name (``"INVALID_ARGUMENT"``...) with its details packed."""
    details: list[any_pb2.Any] = []
    if reason:
        info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=dict(metadata or {}))
        packed = any_pb2.Any()
        packed.Pack(info)
        details.append(packed)
    if violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        details.append(packed)
    if retry_after is not None:
        seconds = max(0.0, retry_after)
        whole = math.floor(seconds)
        delay = duration_pb2.Duration(seconds=whole, nanos=round((seconds - whole) * 1e9))
        packed = any_pb2.Any()
        packed.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        details.append(packed)
    return status_pb2.Status(code=_code_number(code), message=message, details=details)


def to_status(error: ServiceError) -> grpc.Status:
    """The status to abort a call with (``context.abort_with_status``)."""
    return rpc_status.to_status(
        build_status(
            error.code,
            error.message,
            reason=error.reason,
            violations=error.violations,
            metadata=error.metadata,
            retry_after=error.retry_after,
        )
    )


def to_error_message(error: ServiceError) -> common_pb2.Error:
    """The ``sightd.v1.Error`` of a failed task or stream item."""
    return common_pb2.Error(
        code=_code_number(error.code),
        message=error.message,
        reason=error.reason,
        field_violations=[
            common_pb2.FieldViolation(field=v.field, description=v.description) for v in error.violations
        ],
    )


@dataclass
class StatusDetails:
    """What a client reads from an error status."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    domain: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    violations: list[FieldViolation] = field(default_factory=list)
    retry_after: float | None = None


def details_of(error: grpc.RpcError) -> StatusDetails:
    """Unpacks the status and details of a failed call (a ``grpc.Call`` or an aio ``AioRpcError``)."""
    code: grpc.StatusCode = error.code()
    message: str = error.details() or ""
    found = StatusDetails(code=code, message=message)
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    if status is None:
        return found
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            found.reason, found.domain, found.metadata = info.reason, info.domain, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            found.violations = [FieldViolation(v.field, v.description) for v in bad_request.field_violations]
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            found.retry_after = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
    return found
