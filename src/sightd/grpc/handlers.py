"""Servicer plumbing: errors raised by use cases become rich statuses."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from sightd.app.errors import public_error
from sightd.grpc.status import to_status

_Method = TypeVar("_Method", bound=Callable[..., Awaitable[Any]])


def answers_errors(method: _Method) -> _Method:
    """Wraps a unary servicer method: a ServiceError (or an error of the core) aborts the call with its
    google.rpc.Status and details; any other exception is logged and answered INTERNAL with an error id
    only (``public_error``)."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await context.abort_with_status(to_status(public_error(error, context=method.__qualname__)))

    return wrapper  # type: ignore[return-value]
