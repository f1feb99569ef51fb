"""Servicer plumbing: errors raised by use cases become rich statuses."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from sightd.app.errors import ServiceError, from_core_error
from sightd.errors import CoreError
from sightd.grpc.status import to_status

_Method = TypeVar("_Method", bound=Callable[..., Awaitable[Any]])


def answers_errors(method: _Method) -> _Method:
    """Wraps a unary servicer method: a ServiceError (or an error of the core) aborts the call with its
    google.rpc.Status and details."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await method(self, request, context)
        except ServiceError as error:
            await context.abort_with_status(to_status(error))
        except CoreError as error:
            await context.abort_with_status(to_status(from_core_error(error)))

    return wrapper  # type: ignore[return-value]
