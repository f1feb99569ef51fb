"""The inference runtime of the service: a memory-bounded cache of loaded models, a dynamic batcher per
version, inference on worker threads, bounded queues, deadlines and Prometheus metrics (docs/runtime.md).

It knows nothing of gRPC: ``sightd.app`` maps its refusals (QueueFullError -> RESOURCE_EXHAUSTED with
RetryInfo, DeadlineExceededError -> DEADLINE_EXCEEDED, RuntimeStoppedError -> UNAVAILABLE) and the core's
errors (``sightd.errors``) to status codes.
"""

from sightd.runtime.batcher import BatchInfo
from sightd.runtime.definitions import (
    ImageOutcome,
    ImageRequest,
    NetworkDefinition,
    RuntimeSettings,
    TensorsOutcome,
    VersionDefinition,
)
from sightd.runtime.errors import (
    DeadlineExceededError,
    QueueFullError,
    RuntimeRefusedError,
    RuntimeStoppedError,
)
from sightd.runtime.metrics import RuntimeMetrics
from sightd.runtime.runtime import Runtime

__all__ = [
    "BatchInfo",
    "DeadlineExceededError",
    "ImageOutcome",
    "ImageRequest",
    "NetworkDefinition",
    "QueueFullError",
    "Runtime",
    "RuntimeMetrics",
    "RuntimeRefusedError",
    "RuntimeSettings",
    "RuntimeStoppedError",
    "TensorsOutcome",
    "VersionDefinition",
]
