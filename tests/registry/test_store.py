"""The store's leases (shared/leases.py): one create or end of an id at a time, across
replicas, and a holder that lost its lease writes nothing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
from nats.js.errors import NoKeysError

from shared.bus import Bus
from shared.leases import REGISTRY_BUCKET, RegistryBusyError, lease, registry_bucket
from shared.subjects import EVENTS_STREAM
from shared.subscriptions import (
    create_subscription,
    delete_subscription,
    get_subscription,
    subscription_id,
)
from tests.registry.conftest import ClientFactory

URL = "http://127.0.0.1:9000/events"


@pytest.fixture
async def bus(make_client: ClientFactory) -> Bus:
    client = await make_client()
    return client.bus  # type: ignore[attr-defined,no-any-return]


async def hold(bus: Bus, sub_id: str, until: float) -> int:
    bucket = await registry_bucket(bus, 1)
    assert bucket is not None
    return await bucket.put(f"lock.{sub_id}", json.dumps({"until": until}).encode())


async def test_a_dead_holders_lease_is_taken_over(bus: Bus) -> None:
    await hold(bus, subscription_id("Lobby", URL), until=time.time() - 1)
    sub, created = await create_subscription(bus, "Lobby", URL)
    assert created
    assert await get_subscription(bus, sub.id) == sub


async def test_a_live_lease_is_waited_for(bus: Bus) -> None:
    sub_id = subscription_id("Lobby", URL)
    await hold(bus, sub_id, until=time.time() + 60)
    bucket = await registry_bucket(bus, None)
    assert bucket is not None

    async def release_soon() -> None:
        await asyncio.sleep(0.3)
        await bucket.delete(f"lock.{sub_id}")

    releaser = asyncio.create_task(release_soon())
    started = time.monotonic()
    sub, created = await create_subscription(bus, "Lobby", URL)
    await releaser
    assert created and sub.id == sub_id
    assert time.monotonic() - started >= 0.3  # it did wait for the holder


async def test_a_holder_that_lost_its_lease_writes_nothing(bus: Bus) -> None:
    await create_subscription(bus, "Warm", URL)  # the bucket exists
    bucket = await registry_bucket(bus, None)
    sub_id = subscription_id("Lobby", URL)
    assert bucket is not None
    with pytest.raises(RegistryBusyError):
        async with lease(bucket, sub_id) as held:
            taken = await hold(bus, sub_id, until=time.time() + 60)  # another took it over
            await held.confirm()
    assert (await bucket.get(f"lock.{sub_id}")).revision == taken  # the loser did not release it


async def test_create_and_delete_of_one_id_take_turns(bus: Bus) -> None:
    """Creates and deletes of one pair, interleaved at random: whatever order they ran in,
    the end state is consistent (an entry has its index key; no index key without an entry;
    never a consumer)."""
    for _ in range(3):
        tasks = [create_subscription(bus, "Lobby", URL) for _ in range(4)]
        tasks += [delete_subscription(bus, subscription_id("Lobby", URL)) for _ in range(4)]
        await asyncio.gather(*tasks)
        sub = await get_subscription(bus, subscription_id("Lobby", URL))
        index = [e async for e in _index_keys(bus)]
        assert index == ([sub.id] if sub else [])
        assert not await bus.js.consumers_info(EVENTS_STREAM)


async def _index_keys(bus: Bus) -> AsyncIterator[str]:
    registry = await bus.js.key_value(REGISTRY_BUCKET)
    try:
        keys = await registry.keys()
    except NoKeysError:
        return
    for key in keys:
        if key.startswith("room."):
            yield key.rsplit(".", 1)[1]


async def test_ending_by_revision_never_ends_a_newer_registration_of_the_same_id(bus: Bus) -> None:
    """A dispatcher ending the registration it read (by its entry revision) must not end one
    made again since with the same room and URL (the same id)."""
    old, _ = await create_subscription(bus, "Lobby", URL)
    old_revision = (await bus.subscriptions.get(old.id)).revision
    assert await delete_subscription(bus, old.id)
    new, created = await create_subscription(bus, "Lobby", URL)
    assert created and new.id == old.id and new.secret != old.secret
    assert not await delete_subscription(bus, old.id, revision=old_revision)
    assert await get_subscription(bus, new.id) == new
    new_revision = (await bus.subscriptions.get(new.id)).revision
    assert await delete_subscription(bus, new.id, revision=new_revision)
    assert await get_subscription(bus, new.id) is None
