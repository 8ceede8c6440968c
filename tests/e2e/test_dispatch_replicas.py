"""Several dispatcher replicas share the registrations: each room's partition is served by one
replica, every event is POSTed exactly once in normal operation, and a killed replica's work
moves on."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest

from tests.conftest import System
from tests.dispatcher.support import bus_for, feed, metric, numbers, register, wait_until

pytestmark = pytest.mark.e2e

FAST_MEMBERSHIP = {"DISPATCH_HEARTBEAT_S": "0.3", "DISPATCH_MEMBER_TTL_S": "3"}
REGISTRATIONS = 12


async def test_replicas_share_the_work_exactly_once_and_hand_it_over(
    system: System, receiver_factory: Any
) -> None:
    receiver = receiver_factory()
    first = system.service("dispatcher", **FAST_MEMBERSHIP)
    second = system.service("dispatcher", **FAST_MEMBERSHIP)
    first.start()
    second.start()
    replicas = (first, second)
    assert await wait_until(
        lambda: all(metric(d.base_url, "dispatcher_replicas") == 2 for d in replicas), 15
    )
    rooms = [f"Shared{n}" for n in range(REGISTRATIONS)]
    bus = await bus_for(system.nats.url)

    async def feed_all(start: int, stop: int) -> None:
        await asyncio.gather(*(feed(bus, room, start, stop) for room in rooms))

    try:
        subs = [await register(bus, room, f"{receiver.url}/{n}") for n, room in enumerate(rooms)]
        assert await wait_until(
            lambda: (
                sum(metric(d.base_url, "dispatcher_registrations") for d in replicas)
                == REGISTRATIONS
            ),
            10,
        )
        served = [metric(d.base_url, "dispatcher_registrations") for d in replicas]
        assert all(n > 0 for n in served), served  # both work, and no registration twice
        await feed_all(0, 100)
        assert len(receiver.wait_for(100 * REGISTRATIONS, timeout=60)) == 100 * REGISTRATIONS

        by_sub = {
            s.id: [r for r in receiver.received if r.path.endswith(f"/{n}")]
            for n, s in enumerate(subs)
        }
        for sub in subs:
            got = by_sub[sub.id]
            assert numbers(got) == list(range(100)), sub.id
            assert len(got) == 100, f"{sub.id}: duplicates in normal operation"
        delivered = sum(metric(d.base_url, "dispatcher_deliveries_total") for d in replicas)
        assert delivered == 100 * REGISTRATIONS

        # A graceful stop (SIGTERM) mid-stream: the other replica takes over at once.
        await feed_all(100, 200)
        first.stop(signal.SIGTERM)  # uvicorn re-raises SIGTERM once it has shut down
        assert "Application shutdown complete" in first.log()
        assert await wait_until(lambda: distinct_ids(receiver) == 200 * REGISTRATIONS, 60)
        # (the first may have delivered all it had before it stopped: the second takes its
        # registrations at its next heartbeat)
        assert await wait_until(
            lambda: metric(second.base_url, "dispatcher_registrations") == REGISTRATIONS, 10
        )
        assert metric(second.base_url, "dispatcher_replicas") == 1

        # A death (SIGKILL) mid-stream: its registrations move when its heartbeat expires.
        third = system.service("dispatcher", **FAST_MEMBERSHIP)
        third.start()
        assert await wait_until(
            lambda: all(metric(d.base_url, "dispatcher_replicas") == 2 for d in (second, third)),
            15,
        )
        await feed_all(200, 300)
        second.stop(signal.SIGKILL)
        assert await wait_until(lambda: distinct_ids(receiver) == 300 * REGISTRATIONS, 60)
        assert metric(third.base_url, "dispatcher_registrations") == REGISTRATIONS
        assert metric(third.base_url, "dispatcher_replicas") == 1
    finally:
        await bus.close()
    for n, sub in enumerate(subs):
        got = [r for r in receiver.received if r.path.endswith(f"/{n}")]
        assert numbers(got) == list(range(300)), sub.id


def served(replicas: Any) -> float:
    return sum(metric(d.base_url, "dispatcher_registrations") for d in replicas)


def distinct_ids(receiver: Any) -> int:
    return len({r.headers["webhook-id"] for r in receiver.received})
