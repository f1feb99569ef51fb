"""Loaded models by key, bounded by an estimate of their memory, least recently used evicted first.

Only the event loop's thread touches the cache's state; loads run on the loader threads. A key is loaded
once however many callers want it at the same time (single flight: they all wait for the same load, and
share its failure). An entry is in use from ``acquire`` to its lease's ``release`` and is never evicted
then: the budget may be exceeded while the models in use do not fit in it, and is restored as soon as
entries are released or the next model is loaded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Generic, TypeVar

from sightd.runtime.metrics import RuntimeMetrics

LOGGER = logging.getLogger("sightd.runtime")

T = TypeVar("T")


@dataclass(eq=False)
class _Entry(Generic[T]):
    key: str
    value: T
    nbytes: int
    users: int = 0


@dataclass(eq=False)
class _Loading(Generic[T]):
    future: asyncio.Future[_Entry[T]]
    waiters: int = 0


class Lease(Generic[T]):
    """One user's hold on a cache entry; ``release`` (once, idempotent) lets it be evicted again."""

    def __init__(self, cache: ModelCache[T], entry: _Entry[T]) -> None:
        self._cache = cache
        self._entry: _Entry[T] | None = entry
        self.key = entry.key
        self.value = entry.value

    def release(self) -> None:
        if self._entry is not None:
            entry, self._entry = self._entry, None
            self._cache._release(entry)


class ModelCache(Generic[T]):
    """``load`` functions return ``(model, estimated bytes)`` and run on ``executor``."""

    def __init__(self, budget_bytes: int, executor: Executor, metrics: RuntimeMetrics) -> None:
        self.budget_bytes = budget_bytes
        self._executor = executor
        self._metrics = metrics
        self._entries: OrderedDict[str, _Entry[T]] = OrderedDict()  # least recently used first
        self._loading: dict[str, _Loading[T]] = {}
        self.total_bytes = 0
        metrics.cache_budget_bytes.set(budget_bytes)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def in_use(self, key: str) -> int:
        """How many leases hold the key's entry (0 when idle or absent)."""
        entry = self._entries.get(key)
        return entry.users if entry else 0

    def try_acquire(self, key: str) -> Lease[T] | None:
        """The key's model when it is loaded, else None (nothing is loaded)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        entry.users += 1
        self._entries.move_to_end(key)
        return Lease(self, entry)

    async def acquire(self, key: str, load: Callable[[], tuple[T, int]]) -> Lease[T]:
        """The key's model, loaded first when absent; raises what ``load`` raised."""
        lease = self.try_acquire(key)
        if lease is not None:
            return lease
        loading = self._loading.get(key)
        if loading is None:
            loading = _Loading(asyncio.get_running_loop().create_future())
            self._loading[key] = loading
            # The load goes on even if every caller gives up: a caller's cancellation must not waste it.
            asyncio.get_running_loop().create_task(self._load(key, load, loading))
        loading.waiters += 1
        try:
            entry = await asyncio.shield(loading.future)
        except asyncio.CancelledError:
            future = loading.future
            if future.done() and not future.cancelled() and future.exception() is None:
                self._release(future.result())  # the load counted this caller as a user
            elif not future.done():
                loading.waiters -= 1
            raise
        return Lease(self, entry)

    async def _load(self, key: str, load: Callable[[], tuple[T, int]], loading: _Loading[T]) -> None:
        started = time.monotonic()
        try:
            value, nbytes = await asyncio.get_running_loop().run_in_executor(self._executor, load)
        except Exception as error:
            self._metrics.cache_loads.labels("failed").inc()
            del self._loading[key]
            loading.future.set_exception(error)
            # Retrieved here so that a failure nobody waits for any more is not logged as never retrieved.
            loading.future.exception()
            return
        self._metrics.cache_loads.labels("ok").inc()
        self._metrics.cache_load_seconds.observe(time.monotonic() - started)
        del self._loading[key]
        entry = _Entry(key, value, max(1, nbytes), users=loading.waiters)
        self._entries[key] = entry
        self.total_bytes += entry.nbytes
        self._evict(keep=key)
        self._publish()
        LOGGER.info(
            "loaded %s (%.1f MiB estimated) in %.2f s; cache %.1f of %.1f MiB, %d models",
            key,
            entry.nbytes / 2**20,
            time.monotonic() - started,
            self.total_bytes / 2**20,
            self.budget_bytes / 2**20,
            len(self._entries),
        )
        loading.future.set_result(entry)

    def _release(self, entry: _Entry[T]) -> None:
        entry.users -= 1
        if entry.users == 0 and self.total_bytes > self.budget_bytes:
            # The most recently used entry stays: a lone model larger than the budget is not reloaded for
            # every request.
            newest = next(reversed(self._entries), None)
            self._evict(keep=newest)
            self._publish()

    def _evict(self, keep: str | None) -> None:
        """Evicts idle entries, least recently used first, until the budget holds (or only entries in use
        and ``keep`` are left)."""
        for key in list(self._entries):
            if self.total_bytes <= self.budget_bytes:
                break
            entry = self._entries[key]
            if entry.users > 0 or key == keep:
                continue
            del self._entries[key]
            self.total_bytes -= entry.nbytes
            self._metrics.cache_evictions.inc()
            LOGGER.info("evicted %s (%.1f MiB estimated)", key, entry.nbytes / 2**20)

    def _publish(self) -> None:
        self._metrics.cache_entries.set(len(self._entries))
        self._metrics.cache_bytes.set(self.total_bytes)

    def clear(self) -> None:
        """Forgets every idle entry (at shutdown; entries in use stay until released)."""
        for key, entry in list(self._entries.items()):
            if entry.users == 0:
                del self._entries[key]
                self.total_bytes -= entry.nbytes
        self._publish()
