"""Values looked up by key (in the store, mostly), remembered for a while and looked up once for every caller
asking at the same time: what the service's definitions and API keys need on every request.

- A remembered value is answered for ``ttl`` seconds; at most ``capacity`` are kept, the least recently used
  dropped first.
- The callers asking for a key that is not remembered share one lookup (single flight); a caller cancelled
  while waiting does not cancel it for the others, and a lookup that fails fails each of its callers.
- ``keep`` decides which looked-up values are remembered (an unknown API key is not).
- :meth:`RememberedLookups.forget` drops what was remembered and what was being looked up: a lookup that began
  before it is not remembered, since it may have read what the change replaced.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _retrieve(task: asyncio.Task[object]) -> None:
    # A lookup's error is each waiter's; this keeps asyncio from reporting it once more, unretrieved.
    if not task.cancelled():
        task.exception()


class RememberedLookups(Generic[K, V]):
    def __init__(self, ttl: float, capacity: int, *, keep: Callable[[V], bool] = lambda _value: True) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._keep = keep
        self._remembered: OrderedDict[K, tuple[float, V]] = OrderedDict()  # key -> (expiry, value)
        self._lookups: dict[K, asyncio.Task[V]] = {}  # in progress, shared
        self._generation = 0  # counts forget() calls

    def recall(self, key: K) -> V | None:
        """The key's remembered value while it is fresh, else None (without waiting)."""
        found = self._remembered.get(key)
        if found is None:
            return None
        if found[0] < time.monotonic():
            del self._remembered[key]
            return None
        self._remembered.move_to_end(key)
        return found[1]

    async def get(self, key: K, look_up: Callable[[], Awaitable[V]]) -> V:
        """The remembered value of ``key``, or the result of the lookup in progress for it, or of a new one
        (``look_up()``)."""
        found = self.recall(key)
        if found is not None:
            return found
        lookup = self._lookups.get(key)
        if lookup is None:
            lookup = asyncio.get_running_loop().create_task(self._look_up(key, look_up, self._generation))
            lookup.add_done_callback(_retrieve)
            self._lookups[key] = lookup
        return await asyncio.shield(lookup)

    async def _look_up(self, key: K, look_up: Callable[[], Awaitable[V]], generation: int) -> V:
        try:
            value = await look_up()
        finally:
            if self._lookups.get(key) is asyncio.current_task():
                del self._lookups[key]
        if generation == self._generation and self._keep(value):
            self._remembered[key] = (time.monotonic() + self.ttl, value)
            self._remembered.move_to_end(key)
            while len(self._remembered) > self.capacity:
                self._remembered.popitem(last=False)
        return value

    def forget(self) -> None:
        """Drops every remembered value and every lookup in progress (something they read has changed)."""
        self._remembered.clear()
        self._lookups.clear()
        self._generation += 1
