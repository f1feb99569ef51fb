"""The runtime's refusals, independent of the transport (sightd.app maps them to status codes)."""

from __future__ import annotations


class RuntimeRefusedError(Exception):
    """Base class: the runtime did not run the work; ``code`` is the canonical status name to answer."""

    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class QueueFullError(RuntimeRefusedError):
    """A queue is full (the version's or the whole runtime's): RESOURCE_EXHAUSTED, with RetryInfo saying to
    wait ``retry_after`` seconds (an estimate of the time the queue ahead needs to drain)."""

    code = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeadlineExceededError(RuntimeRefusedError):
    """The caller's deadline passed before its result was ready; queued work was dropped, not run."""

    code = "DEADLINE_EXCEEDED"


class RuntimeStoppedError(RuntimeRefusedError):
    """The runtime is stopping (or not started) and takes no new work: UNAVAILABLE, retry elsewhere."""

    code = "UNAVAILABLE"
