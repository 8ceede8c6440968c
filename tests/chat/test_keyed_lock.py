"""KeyedLock: one holder per key at a time, and no lock kept for a key nobody uses."""

from __future__ import annotations

import asyncio

import pytest

from services.chat.keyed_lock import KeyedLock


async def test_one_holder_per_key_and_nothing_kept_after() -> None:
    locks = KeyedLock()
    order: list[str] = []
    release = asyncio.Event()

    async def first() -> None:
        async with locks.hold("a"):
            order.append("first in")
            await release.wait()
            order.append("first out")

    async def second() -> None:
        async with locks.hold("a"):
            order.append("second in")

    async def other_key() -> None:
        async with locks.hold("b"):
            order.append("b in")

    t1 = asyncio.create_task(first())
    await asyncio.sleep(0)
    t2 = asyncio.create_task(second())
    await other_key()  # another key is not held up
    await asyncio.sleep(0)
    assert order == ["first in", "b in"]
    assert len(locks) == 1
    release.set()
    await asyncio.gather(t1, t2)
    assert order == ["first in", "b in", "first out", "second in"]
    assert len(locks) == 0


async def test_an_error_or_a_cancelled_waiter_lets_go() -> None:
    locks = KeyedLock()
    with pytest.raises(ValueError):
        async with locks.hold("a"):
            raise ValueError
    assert len(locks) == 0
    entered = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with locks.hold("a"):
            entered.set()
            await release.wait()

    async def waiter() -> None:
        async with locks.hold("a"):
            raise AssertionError("never entered")

    t1 = asyncio.create_task(holder())
    await entered.wait()
    t2 = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    t2.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t2
    release.set()
    await t1
    assert len(locks) == 0
