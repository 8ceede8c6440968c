"""Order and at-least-once (docs/callbacks.md) with real processes: a registration receives
its room's events in stream order, and none is lost when the dispatcher or nats-server is
killed."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest

from tests.conftest import System
from tests.dispatcher.support import metric, numbers, register_and_feed, wait_until

pytestmark = pytest.mark.e2e


async def test_a_thousand_events_arrive_in_order(system: System, receiver_factory: Any) -> None:
    receiver = receiver_factory()
    system.service("dispatcher").start()
    room = "Thousand"
    await register_and_feed(system.nats.url, room, receiver.url, 0, 1000)
    received = receiver.wait_for(1000, timeout=60)
    assert numbers(received) == list(range(1000))
    assert len(received) == 1000  # no duplicate either, in normal operation


async def test_nothing_is_lost_when_the_dispatcher_is_killed(
    system: System, receiver_factory: Any
) -> None:
    receiver = receiver_factory()
    dispatcher = system.service("dispatcher")
    dispatcher.start()
    room = "Crash"
    await register_and_feed(system.nats.url, room, receiver.url, 0, 2000)
    receiver.wait_for(600, timeout=60)
    dispatcher.stop(signal.SIGKILL)
    midway = len(receiver.received)
    assert midway < 2000
    dispatcher.start()
    assert await wait_until(lambda: len(set(numbers(receiver.received))) == 2000, 90)
    assert numbers(receiver.received) == list(range(2000))


async def test_nothing_is_lost_when_nats_is_killed(system: System, receiver_factory: Any) -> None:
    receiver = receiver_factory()
    late = receiver_factory()  # registers after the restart
    dispatcher = system.service("dispatcher")
    dispatcher.start()
    room = "NatsCrash"
    await register_and_feed(system.nats.url, room, receiver.url, 0, 1000)
    receiver.wait_for(300, timeout=60)
    system.nats.stop(signal.SIGKILL)
    midway = len(receiver.received)
    await asyncio.sleep(1)
    system.nats.start()
    await register_and_feed(system.nats.url, room, late.url, 1000, 2000)
    assert midway < 1000
    assert await wait_until(lambda: len(set(numbers(receiver.received))) == 2000, 90)
    assert numbers(receiver.received) == list(range(2000))
    assert await wait_until(lambda: len(set(numbers(late.received))) == 1000, 60)
    assert numbers(late.received) == list(range(1000, 2000))
    assert metric(dispatcher.base_url, "dispatcher_deliveries_total") >= 2000
