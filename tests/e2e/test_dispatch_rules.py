"""The delivery rules (docs/callbacks.md) with real callbacks: only 200 keeps a registration,
redirects are never followed, a silent callback is retried within the window and then ended,
and a slow callback delays no one else."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from services.dispatcher.delivery import verify
from tests.conftest import API_TOKEN, System
from tests.dispatcher.support import (
    bus_for,
    feed,
    metric,
    numbers,
    register,
    wait_gone,
    wait_until,
)

pytestmark = pytest.mark.e2e

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


async def test_only_200_keeps_a_registration_and_redirects_are_not_followed(
    system: System, receiver_factory: Any
) -> None:
    refusing = {status: receiver_factory(status=status) for status in (201, 204, 302, 404, 500)}
    target = receiver_factory()
    refusing[302].location = target.url
    healthy = receiver_factory()
    urls = [r.url for r in refusing.values()] + [healthy.url, target.url]
    registry = system.service("registry", EVENT_CALLBACK_PREFIX=" ".join(urls))
    dispatcher = system.service("dispatcher")
    registry.start()
    dispatcher.start()
    room = "Rules"
    ids = {}
    async with httpx.AsyncClient(base_url=registry.base_url, headers=AUTH) as api:
        for status, receiver in refusing.items():
            answer = await api.post("/v1/subscriptions", json={"room": room, "url": receiver.url})
            assert answer.status_code == 201
            ids[status] = answer.json()["id"]
        answer = await api.post("/v1/subscriptions", json={"room": room, "url": healthy.url})
        secret = answer.json()["secret"]

        bus = await bus_for(system.nats.url)
        try:
            await feed(bus, room, 0, 5)
            assert numbers(healthy.wait_for(5)) == [0, 1, 2, 3, 4]
            for status in refusing:
                assert await wait_gone(bus, ids[status], 10), status
            await feed(bus, room, 5, 8)
            assert numbers(healthy.wait_for(8)) == list(range(8))
        finally:
            await bus.close()
        for status, receiver in refusing.items():
            assert (await api.get(f"/v1/subscriptions/{ids[status]}")).status_code == 404
            assert numbers(receiver.received) == [0], status  # one POST, then nothing
    assert target.received == []
    url = dispatcher.base_url
    assert metric(url, "dispatcher_registrations_ended_total", 'reason="status"') == 5
    assert metric(url, "dispatcher_deliveries_total", 'outcome="refused"') == 5
    assert metric(url, "dispatcher_deliveries_total", 'outcome="delivered"') == 8
    assert metric(url, "dispatcher_delivery_seconds_count") == 8
    assert metric(url, "dispatcher_oldest_undelivered_seconds") >= 0
    assert metric(url, "dispatcher_events_expired_total") == 0
    now = time.time()
    for r in healthy.received:
        assert verify(secret, r.headers, r.body, now), r.headers
    healthy_id = answer.json()["id"]
    assert [r.headers["webhook-id"] for r in healthy.received] == [
        f"{healthy_id}_{seq}" for seq in range(1, 9)
    ]
    assert refusing[201].received[0].headers["webhook-id"] == f"{ids[201]}_1"


async def test_a_hanging_callback_is_retried_then_ended(
    system: System, receiver_factory: Any
) -> None:
    hanging = receiver_factory(delay_s=3600)
    healthy = receiver_factory()
    dispatcher = system.service(
        "dispatcher",
        DISPATCH_TIMEOUT_S="0.5",
        DISPATCH_RETRY_WINDOW_S="2",
        DISPATCH_BACKOFF_INITIAL_S="0.2",
    )
    dispatcher.start()
    room = "Hanging"
    bus = await bus_for(system.nats.url)
    try:
        doomed = await register(bus, room, hanging.url)
        await register(bus, room, healthy.url)
        await feed(bus, room, 0, 3)
        assert numbers(healthy.wait_for(3)) == [0, 1, 2]
        assert await wait_gone(bus, doomed.id, 20)
        tries = len(hanging.received)
        await feed(bus, room, 3, 5)
        assert numbers(healthy.wait_for(5)) == [0, 1, 2, 3, 4]
    finally:
        await bus.close()
    await asyncio.sleep(0.5)
    assert tries >= 3  # the first POST and retries within the window ...
    assert len(hanging.received) == tries  # ... and nothing after the registration ended
    assert {r.headers["webhook-id"] for r in hanging.received} == {f"{doomed.id}_1"}
    url = dispatcher.base_url
    assert metric(url, "dispatcher_registrations_ended_total", 'reason="unreachable"') == 1
    assert metric(url, "dispatcher_retries_total") == tries - 1
    assert metric(url, "dispatcher_deliveries_total", 'outcome="unreachable"') == tries


async def test_a_slow_callback_delays_no_other(system: System, receiver_factory: Any) -> None:
    slow = receiver_factory(delay_s=5)
    fast = receiver_factory()
    system.service("dispatcher", DISPATCH_TIMEOUT_S="10").start()
    room = "Slow"
    bus = await bus_for(system.nats.url)
    try:
        await register(bus, room, slow.url)
        await register(bus, room, fast.url)
        await feed(bus, room, 0, 50)
        # Were the two coupled, the fast one would get one event every 5 s at best.
        assert numbers(fast.wait_for(50, timeout=30)) == list(range(50))
        assert len(slow.received) < 10
        assert await wait_until(lambda: len(slow.received) >= 2, 12)
    finally:
        await bus.close()
    assert numbers(slow.received)[:2] == [0, 1]
