"""The worker against a real nats-server and a real HTTP receiver, in-process: an event whose
POST lasts longer than `ack_wait` is not handed to anyone else meanwhile (in_progress)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from nats.errors import TimeoutError as NatsTimeoutError

from services.dispatcher.http import http_client
from services.dispatcher.settings import DispatcherSettings
from services.dispatcher.supervisor import Supervisor
from services.dispatcher.worker import SubscriptionWorker
from shared.subjects import EVENTS_STREAM
from shared.subscriptions import Subscription, consumer_config, new_secret, subscription_id
from tests.conftest import NatsServer
from tests.dispatcher.support import bus_for, feed, numbers, register

pytestmark = pytest.mark.e2e


async def test_a_post_longer_than_ack_wait_is_not_redelivered(
    nats_server: NatsServer, receiver_factory: Any
) -> None:
    slow = receiver_factory(delay_s=3)
    room = "Patience"
    bus = await bus_for(nats_server.url)
    sub_id = subscription_id(room, slow.url)
    await bus.js.add_consumer(EVENTS_STREAM, consumer_config(sub_id, room, 1, ack_wait=1.0))
    sub = Subscription(sub_id, room, slow.url, new_secret(), "2026-01-01T00:00:00Z")
    await bus.subscriptions.create(sub_id, sub.to_json())
    settings = DispatcherSettings(nats_url=nats_server.url, dispatch_timeout_s=10)
    async with http_client(settings) as client:
        worker = SubscriptionWorker(sub, bus, client, settings)
        task = asyncio.create_task(worker.run())
        try:
            await feed(bus, room, 0, 2)
            assert len(await asyncio.to_thread(slow.wait_for, 1)) == 1
            spy = await bus.js.pull_subscribe_bind(durable=sub_id, stream=EVENTS_STREAM)
            with pytest.raises((NatsTimeoutError, TimeoutError)):
                await spy.fetch(1, timeout=2.2)  # the first POST is still running: nothing
            await spy.unsubscribe()
            assert len(await asyncio.to_thread(slow.wait_for, 2, 10)) == 2
        finally:
            worker.stop()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    info = await bus.js.consumer_info(EVENTS_STREAM, sub_id)
    await bus.close()
    assert numbers(slow.received) == [0, 1]
    assert len(slow.received) == 2
    assert info.num_redelivered == 0


async def test_a_registration_made_again_is_served_with_its_new_secret(
    nats_server: NatsServer, receiver_factory: Any
) -> None:
    """A delete seen only as a changed entry (the watch restarted between the delete and the new
    registration) must not leave a worker signing with the old secret."""
    receiver = receiver_factory()
    bus = await bus_for(nats_server.url)
    first = await register(bus, "Again", receiver.url)
    settings = DispatcherSettings(nats_url=nats_server.url)
    async with http_client(settings) as client:
        supervisor = Supervisor(bus, client, settings, "only-replica")
        supervisor._added(first)
        old_worker, _ = supervisor.workers[first.id]
        again = dataclasses.replace(first, secret=new_secret())
        supervisor._added(again)
        worker, _ = supervisor.workers[first.id]
        assert worker is not old_worker
        assert worker.subscription.secret == again.secret
        supervisor._added(again)  # the same entry once more changes nothing
        assert supervisor.workers[first.id][0] is worker
        await supervisor.stop_all(1.0)
    await bus.close()
