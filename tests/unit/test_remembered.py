"""RememberedLookups on its own: freshness, capacity, what is kept, and forget during a lookup (the shared
lookups themselves are exercised against the store by test_definitions.py and test_grpc_interceptors.py)."""

from __future__ import annotations

import asyncio

from sightd.remembered import RememberedLookups


async def test_values_expire_after_ttl_and_the_least_recently_used_leave_first() -> None:
    calls: list[str] = []

    async def look_up(key: str) -> str:
        calls.append(key)
        return key.upper()

    remembered: RememberedLookups[str, str] = RememberedLookups(ttl=60.0, capacity=2)
    for key in ("a", "b", "a", "c"):  # c pushes out b, the least recently used
        assert await remembered.get(key, lambda key=key: look_up(key)) == key.upper()
    assert calls == ["a", "b", "c"]
    assert (remembered.recall("a"), remembered.recall("b"), remembered.recall("c")) == ("A", None, "C")

    stale: RememberedLookups[str, str] = RememberedLookups(ttl=0.0, capacity=2)
    await stale.get("a", lambda: look_up("a"))
    await asyncio.sleep(0.001)
    assert stale.recall("a") is None


async def test_values_that_keep_refuses_are_looked_up_again() -> None:
    calls = 0

    async def unknown() -> int | None:
        nonlocal calls
        calls += 1
        return None

    remembered: RememberedLookups[str, int | None] = RememberedLookups(60.0, 10, keep=lambda v: v is not None)
    assert await remembered.get("k", unknown) is None
    assert await remembered.get("k", unknown) is None
    assert calls == 2


async def test_a_lookup_that_began_before_forget_is_not_remembered() -> None:
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "old"

    remembered: RememberedLookups[str, str] = RememberedLookups(60.0, 10)
    early = asyncio.ensure_future(remembered.get("k", slow))
    await asyncio.sleep(0)
    remembered.forget()
    release.set()
    assert await early == "old"
    assert remembered.recall("k") is None
