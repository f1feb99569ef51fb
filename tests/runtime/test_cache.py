"""The model cache: memory budget and least-recently-used eviction (never of a model in use), single-flight
loading, shared load failures. Each network's memory estimate is made to dominate by giving its file an
unused initializer and a large ``memory_factor``, so that the budget holds a known number of models."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from runtime_support import RED, Gate, colour_network, ppm, top_label, version

from sightd.errors import EngineError
from sightd.runtime import ImageRequest, Runtime, RuntimeMetrics, RuntimeSettings, VersionDefinition
from sightd.runtime.cache import ModelCache

MB = 1 << 20
FACTOR = 1000.0  # 100 kB files -> ~100 MB estimates, far above what loading such a network adds to memory


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, VersionDefinition]:
    folder = tmp_path_factory.mktemp("cache")
    return {
        name: version(colour_network(folder / f"{name}.onnx", padding_bytes=100_000), key=f"version:{name}")
        for name in ("a", "b", "c")
    }


def settings(models: float, **values: object) -> RuntimeSettings:
    """A budget of about ``models`` networks of the fixture."""
    defaults: dict[str, object] = {
        "workers": 2,
        "max_batch_delay_us": 0,
        "warmup": False,
        "memory_factor": FACTOR,
        "cache_bytes": int(models * 100_000 * FACTOR),
    }
    return RuntimeSettings(**{**defaults, **values})  # type: ignore[arg-type]


def red() -> list[ImageRequest]:
    return [ImageRequest(ppm(RED))]


def loads(runtime: Runtime, result: str = "ok") -> float:
    return runtime.metrics.value("sightd_runtime_cache_loads_total", {"result": result})


async def test_least_recently_used_models_are_evicted_to_fit_the_budget(
    versions: dict[str, VersionDefinition],
) -> None:
    a, b, c = versions["a"], versions["b"], versions["c"]
    async with Runtime(settings(2.5)) as runtime:
        for definition in (a, b, a):  # a is used last
            assert top_label((await runtime.recognize(definition, red()))[0].result or {}) == "red"
        assert loads(runtime) == 2
        await runtime.recognize(c, red())
        assert [runtime.is_loaded(v.key) for v in (a, b, c)] == [True, False, True]
        metrics = runtime.metrics
        assert metrics.value("sightd_runtime_cache_evictions_total") == 1
        assert metrics.value("sightd_runtime_cache_entries") == 2
        assert 2 * 100_000 * FACTOR <= metrics.value("sightd_runtime_cache_bytes") <= 2.5 * 100_000 * FACTOR
        await runtime.recognize(b, red())  # loaded again, evicting a (c was used after it)
        assert [runtime.is_loaded(v.key) for v in (a, b, c)] == [False, True, True]
        assert loads(runtime) == 4


async def test_a_model_in_use_is_not_evicted(versions: dict[str, VersionDefinition]) -> None:
    a, b = versions["a"], versions["b"]
    gate = Gate(hold={a.key})
    async with Runtime(settings(1.5), on_batch=gate) as runtime:
        held = asyncio.create_task(runtime.recognize(a, red()))
        await gate.entered()
        # b needs the room a takes, but a's batch is running: both stay, over the budget for a while.
        assert top_label((await runtime.recognize(b, red()))[0].result or {}) == "red"
        assert runtime.is_loaded(a.key)
        assert runtime.is_loaded(b.key)
        assert runtime.metrics.value("sightd_runtime_cache_bytes") > runtime.settings.cache_bytes
        assert runtime.metrics.value("sightd_runtime_cache_evictions_total") == 0
        gate.open()
        assert top_label((await held)[0].result or {}) == "red"
        await asyncio.sleep(0)  # a's batcher ends and releases it
        assert not runtime.is_loaded(a.key)
        assert runtime.is_loaded(b.key)
        assert runtime.metrics.value("sightd_runtime_cache_evictions_total") == 1


async def test_a_lone_model_over_the_budget_stays_loaded(
    versions: dict[str, VersionDefinition],
) -> None:
    async with Runtime(settings(0.5)) as runtime:
        for _ in range(3):
            await runtime.recognize(versions["a"], red())
        assert runtime.is_loaded(versions["a"].key)
        assert loads(runtime) == 1


async def test_many_requests_for_a_model_load_it_once(versions: dict[str, VersionDefinition]) -> None:
    async with Runtime(settings(3, max_batch=4, workers=2)) as runtime:
        answers = await asyncio.gather(*(runtime.recognize(versions["c"], red()) for _ in range(24)))
        assert all(top_label(a[0].result or {}) == "red" for a in answers)
        assert loads(runtime) == 1


async def test_a_model_that_does_not_load_fails_every_waiting_request_once(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07 not a model")
    definition = version(broken, key="version:broken")
    async with Runtime(settings(3)) as runtime:
        answers = await asyncio.gather(
            *(runtime.recognize(definition, red()) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(a, EngineError) for a in answers)
        assert loads(runtime, "failed") == 1
        with pytest.raises(EngineError):  # failures are not remembered: a later request tries again
            await runtime.recognize(definition, red())
        assert loads(runtime, "failed") == 2
        labels = {"kind": "recognition", "outcome": "failed"}
        assert runtime.metrics.value("sightd_runtime_requests_total", labels) == 6


# --- ModelCache on its own: the single flight and the leases --------------------------------------------


class Loads:
    """A load function that counts its calls and waits until released (on the loader thread)."""

    def __init__(self, nbytes: int) -> None:
        self.calls = 0
        self.nbytes = nbytes
        self.release = threading.Event()

    def __call__(self) -> tuple[object, int]:
        self.calls += 1
        assert self.release.wait(timeout=60)
        return object(), self.nbytes


async def test_concurrent_acquires_share_one_load_and_cancelled_waiters_hold_nothing() -> None:
    with ThreadPoolExecutor(1) as executor:
        cache: ModelCache[object] = ModelCache(10 * MB, executor, RuntimeMetrics())
        load = Loads(4 * MB)
        waiters = [asyncio.create_task(cache.acquire("k", load)) for _ in range(6)]
        await asyncio.sleep(0.05)
        waiters[0].cancel()
        load.release.set()
        leases = await asyncio.gather(*waiters[1:])
        assert load.calls == 1
        assert len({id(lease.value) for lease in leases}) == 1
        assert cache.in_use("k") == 5  # the cancelled waiter holds no use
        for lease in leases:
            lease.release()
            lease.release()  # idempotent
        assert cache.in_use("k") == 0
        assert "k" in cache
        other = Loads(8 * MB)
        other.release.set()
        lease = await cache.acquire("other", other)  # needs k's room: k is idle, so evicted
        assert "k" not in cache
        assert cache.total_bytes == 8 * MB
        lease.release()
