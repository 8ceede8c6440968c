"""Registrations are limited by storage, not by NATS objects (docs/callbacks.md): on the
nats-server `make run` starts (its defaults), 2,000 registrations all get 201, the number of
consumers on every stream is what it was with none, and the dispatcher serves them all."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import nats
import pytest

from tests.conftest import API_TOKEN, System
from tests.dispatcher.support import bus_for, feed, metric, numbers, wait_until

pytestmark = pytest.mark.e2e

REGISTRATIONS = 2000
IN_FLIGHT = 20


async def consumers(url: str) -> dict[str, int]:
    """The number of consumers of every stream."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        streams = await js.streams_info()
        return {s.config.name: len(await js.consumers_info(s.config.name)) for s in streams}
    finally:
        await nc.close()


async def test_two_thousand_registrations_add_no_nats_object(
    system: System, receiver_factory: Any
) -> None:
    receiver = receiver_factory()
    registry = system.service("registry", EVENT_CALLBACK_PREFIX=receiver.url)
    dispatcher = system.service("dispatcher")
    registry.start()
    dispatcher.start()
    before = await consumers(system.nats.url)
    statuses: list[int] = []
    slots = asyncio.Semaphore(IN_FLIGHT)
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    async with httpx.AsyncClient(base_url=registry.base_url, headers=headers) as api:

        async def post(n: int) -> None:
            async with slots:
                body = {"room": f"Room{n // 2}", "url": f"{receiver.url}/{n}"}
                statuses.append((await api.post("/v1/subscriptions", json=body)).status_code)

        await asyncio.gather(*(post(n) for n in range(REGISTRATIONS)))
    assert statuses == [201] * REGISTRATIONS
    assert await wait_until(
        lambda: metric(dispatcher.base_url, "dispatcher_registrations") == REGISTRATIONS, 30
    )
    after = await consumers(system.nats.url)
    assert sum(after.values()) == sum(before.values()), (before, after)
    bus = await bus_for(system.nats.url)
    try:
        await feed(bus, "Room999", 0, 3)  # the last room's two registrations are served
        got = receiver.wait_for(6)
    finally:
        await bus.close()
    for path in ("/events/1998", "/events/1999"):
        assert numbers(r for r in got if r.path == path) == [0, 1, 2]
