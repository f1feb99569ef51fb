"""RuntimeSettings: the service's configuration mapped onto it, and values refused."""

from __future__ import annotations

import os

import pytest

from sightd.config import load_settings
from sightd.recognition import SessionSettings
from sightd.runtime import NetworkDefinition, RuntimeSettings, VersionDefinition, models
from sightd.zoo import installed


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


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, max(1, (os.cpu_count() or 1) // 2)),  # 2 workers share the cores out
        ({"SIGHTD_INFERENCE_WORKERS": "1"}, os.cpu_count() or 1),
        ({"SIGHTD_INTRA_OP_THREADS": "3"}, 3),
    ],
)
def test_each_session_gets_the_configured_or_shared_out_intra_op_threads(
    config: dict[str, str], expected: int, zoo: installed.Zoo
) -> None:
    settings = RuntimeSettings.from_settings(load_settings(environ=config), warmup=False)
    assert settings.session_settings.intra_op_threads == expected
    network = zoo.networks["imagenet-mobilenet-v2"]
    definition = NetworkDefinition("network:t", network.path, network.preprocessing, {})
    # The first session of the process starts ONNX Runtime's own threads: not counted.
    models.build_network(
        definition, RuntimeSettings(warmup=False, session=SessionSettings(intra_op_threads=1))
    )
    before = _threads()
    loaded = models.build_network(definition, settings)
    # ONNX Runtime's intra-op pool: the threads besides the one calling Run, started with the session.
    assert _threads() - before == expected - 1
    del loaded


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (RuntimeSettings.from_settings(load_settings(environ={}), warmup=False), 1),  # the service's default
        (
            RuntimeSettings.from_settings(load_settings(environ={"SIGHTD_CPU_MAX_BATCH": "4"}), warmup=False),
            4,
        ),
        (RuntimeSettings(warmup=False), 8),  # the runtime alone: max_batch everywhere
        (RuntimeSettings(max_batch=2, cpu_max_batch=4, warmup=False), 2),
    ],
)
def test_a_model_on_the_cpu_takes_at_most_cpu_max_batch_images(
    settings: RuntimeSettings, expected: int, zoo: installed.Zoo
) -> None:
    network = zoo.networks["imagenet-mobilenet-v2"]
    version = VersionDefinition.from_zoo("imagenet-mobilenet-v2", zoo)
    loaded = models.build_version(version, settings)
    assert loaded.recognizer.provider == "CPUExecutionProvider"
    assert loaded.max_batch == expected
    assert (
        models.build_network(
            NetworkDefinition("network:t", network.path, network.preprocessing, {}), settings
        ).max_batch
        == expected
    )
