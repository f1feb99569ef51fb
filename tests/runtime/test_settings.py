"""RuntimeSettings: the service's configuration mapped onto it, and values refused."""

from __future__ import annotations

import pytest

from sightd.config import load_settings
from sightd.runtime import RuntimeSettings


def test_the_service_configuration_sets_batching_queues_and_the_cache() -> None:
    config = load_settings(
        environ={
            "SIGHTD_MAX_BATCH": "16",
            "SIGHTD_MAX_BATCH_DELAY_US": "500",
            "SIGHTD_QUEUE_DEPTH": "32",
            "SIGHTD_SESSION_CACHE_BYTES": "1GiB",
        }
    )
    settings = RuntimeSettings.from_settings(config, workers=3)
    assert settings.max_batch == 16
    assert settings.max_batch_delay_us == 500
    assert settings.max_batch_delay == pytest.approx(0.0005)
    assert settings.queue_depth == 32
    assert settings.max_queued_requests == 128
    assert settings.cache_bytes == 1 << 30
    assert settings.workers == 3


@pytest.mark.parametrize(
    "values",
    [
        {"max_batch": 0},
        {"workers": 0},
        {"queue_depth": 0},
        {"max_queued_bytes": 0},
        {"cache_bytes": 0},
        {"max_batch_delay_us": -1},
        {"memory_factor": 0.0},
        {"decode_threads": -1},
    ],
)
def test_values_out_of_range_are_refused(values: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(values))):
        RuntimeSettings(**values)  # type: ignore[arg-type]
