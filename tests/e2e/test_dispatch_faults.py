"""Delivery under faults, with real processes (docs/callbacks.md, delivery rules): the dispatcher
blames no callback for its own stall, a slow callback delays none of the others of its
partition, a killed dispatcher holding read-ahead events loses and reorders none, events that
aged out are reported, and registrations of the design before positions are taken over."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StreamConfig

from shared.bus import SUBSCRIPTIONS_BUCKET, connect
from shared.events import ChatEvent, to_json
from shared.positions import partition_of
from shared.settings import CommonSettings
from shared.subjects import EVENT_SUBJECTS, EVENTS_STREAM, event_subject, room_subjects
from shared.subscriptions import get_subscription, new_secret, subscription_id
from tests.conftest import System
from tests.dispatcher.support import bus_for, feed, metric, numbers, register, wait_until

pytestmark = pytest.mark.e2e


async def test_a_stopped_dispatcher_blames_no_callback(
    system: System, receiver_factory: Any
) -> None:
    """Its callback had no answer twice in a row, with the dispatcher stopped (SIGSTOP) for 20 s
    in between: 20 s of a 10 s window on the wall clock, but the dispatcher was not there to
    try. And the POSTs in flight when it stopped time out when it runs again: not counted."""
    hiccup = receiver_factory(drop_first=2)
    busy = receiver_factory(delay_s=0.2)
    dispatcher = system.service(
        "dispatcher",
        DISPATCH_RETRY_WINDOW_S="10",
        DISPATCH_BACKOFF_INITIAL_S="3",
        DISPATCH_TIMEOUT_S="2",
    )
    dispatcher.start()
    bus = await bus_for(system.nats.url)
    try:
        first = await register(bus, "Hiccup", hiccup.url)
        second = await register(bus, "Busy", busy.url)
        await feed(bus, "Busy", 0, 40)
        await feed(bus, "Hiccup", 0, 1)
        hiccup.wait_for(1)  # no answer: the next try is 3 s away
        assert dispatcher.proc is not None
        dispatcher.proc.send_signal(signal.SIGSTOP)
        await feed(bus, "Hiccup", 1, 5)
        await asyncio.sleep(20)
        dispatcher.proc.send_signal(signal.SIGCONT)
        assert await wait_until(lambda: len(set(numbers(hiccup.received[2:]))) == 5, 30)
        assert await wait_until(lambda: len(set(numbers(busy.received))) == 40, 30)
        assert await get_subscription(bus, first.id) is not None
        assert await get_subscription(bus, second.id) is not None
    finally:
        await bus.close()
    assert numbers(hiccup.received[2:]) == list(range(5))
    assert numbers(busy.received) == list(range(40))
    assert metric(dispatcher.base_url, "dispatcher_registrations_ended_total") == 0


async def test_a_slow_callback_delays_none_of_its_partition(
    system: System, receiver_factory: Any
) -> None:
    rooms = [f"Busy{n}" for n in range(3000) if partition_of(f"Busy{n}") == 0][:51]
    slow = receiver_factory(delay_s=2)
    fast = receiver_factory()
    system.service("dispatcher", DISPATCH_READ_AHEAD="5", DISPATCH_TIMEOUT_S="10").start()
    bus = await bus_for(system.nats.url)
    try:
        await register(bus, rooms[0], slow.url)
        subs = [await register(bus, room, f"{fast.url}/{n}") for n, room in enumerate(rooms[1:])]
        await asyncio.gather(*(feed(bus, room, 0, 20) for room in rooms))
        assert len(fast.wait_for(50 * 20, timeout=30)) == 50 * 20
        assert len(slow.received) < 10  # still at it, alone
    finally:
        await bus.close()
    for n, sub in enumerate(subs):
        got = [r for r in fast.received if r.path == f"/events/{n}"]
        assert numbers(got) == list(range(20)), sub.id
    assert numbers(slow.received) == list(range(len(slow.received)))


async def test_a_killed_dispatcher_holding_read_ahead_loses_and_reorders_nothing(
    system: System, receiver_factory: Any
) -> None:
    receiver = receiver_factory(delay_s=0.01)
    dispatcher = system.service("dispatcher", DISPATCH_READ_AHEAD="50", DISPATCH_FLUSH_S="0.2")
    dispatcher.start()
    bus = await bus_for(system.nats.url)
    try:
        await register(bus, "Ahead", receiver.url)
        await feed(bus, "Ahead", 0, 600)
        receiver.wait_for(150, timeout=30)
        dispatcher.stop(signal.SIGKILL)  # with up to 50 events in hand, some not yet stored
        midway = len(receiver.received)
        assert midway < 600
        await feed(bus, "Ahead", 600, 700)
        dispatcher.start()
        assert await wait_until(lambda: len(set(numbers(receiver.received))) == 700, 60)
    finally:
        await bus.close()
    assert numbers(receiver.received) == list(range(700))


async def test_events_that_aged_out_are_reported(system: System, receiver_factory: Any) -> None:
    receiver = receiver_factory()
    aging = {"EVENTS_MAX_AGE_S": "6"}  # long enough for a dispatcher to start on a busy machine
    dispatcher = system.service("dispatcher", **aging)
    dispatcher.start()
    bus = await connect(CommonSettings(nats_url=system.nats.url, events_max_age_s=6), "test")
    try:
        await register(bus, "Fleeting", receiver.url)
        await feed(bus, "Fleeting", 0, 3)
        receiver.wait_for(3)
        dispatcher.stop(signal.SIGTERM)
        await feed(bus, "Fleeting", 3, 6)  # never delivered: gone before the dispatcher is back
        await asyncio.sleep(7)
        await feed(bus, "Fleeting", 6, 9)
        dispatcher.start()
        assert await wait_until(lambda: len(receiver.received) >= 6, 20)
    finally:
        await bus.close()
    await asyncio.sleep(0.5)
    assert numbers(receiver.received) == [0, 1, 2, 6, 7, 8]
    assert metric(dispatcher.base_url, "dispatcher_events_expired_total") == 1
    assert "aged out before" in dispatcher.log()


async def test_registrations_with_a_consumer_each_are_taken_over(
    system: System, receiver_factory: Any
) -> None:
    """An installation of the design before positions: a durable consumer per registration
    on an interest-kept stream, some events already acknowledged. The new dispatcher delivers
    exactly what was not, and the consumers go."""
    delivered_before = receiver_factory()
    registered_late = receiver_factory()
    nc = await nats.connect(system.nats.url)
    js = nc.jetstream()
    await js.add_stream(
        StreamConfig(
            name=EVENTS_STREAM, subjects=[EVENT_SUBJECTS], retention=RetentionPolicy.INTEREST
        )
    )
    kv = await js.create_key_value(bucket=SUBSCRIPTIONS_BUCKET, history=1)
    room = "Heritage"

    async def old_registration(url: str) -> str:
        sub_id = subscription_id(room, url)
        entry = {"id": sub_id, "room": room, "url": url, "secret": new_secret(),
                 "created_at": "2026-11-01T00:00:00Z"}  # fmt: skip
        await js.add_consumer(
            EVENTS_STREAM,
            ConsumerConfig(
                durable_name=sub_id,
                filter_subject=room_subjects(room),
                deliver_policy=DeliverPolicy.NEW,
                ack_policy=AckPolicy.EXPLICIT,
                max_ack_pending=1,
            ),
        )
        await kv.create(sub_id, json.dumps(entry).encode())
        return sub_id

    async def publish(start: int, stop: int) -> None:
        for n in range(start, stop):
            await js.publish(event_subject(room, "chat"), to_json(ChatEvent(room, "old", f"m{n}")))

    first = await old_registration(delivered_before.url)
    await publish(0, 10)
    pull = await js.pull_subscribe_bind(durable=first, stream=EVENTS_STREAM)
    for _ in range(4):  # the old dispatcher delivered m0..m3
        for msg in await pull.fetch(1, timeout=2):
            await msg.ack_sync()
    await pull.unsubscribe()
    await old_registration(registered_late.url)  # after m0..m9: must get none of them
    await publish(10, 12)
    await nc.close()

    dispatcher = system.service("dispatcher")
    dispatcher.start()
    assert await wait_until(lambda: len(delivered_before.received) >= 8, 20)
    assert await wait_until(lambda: len(registered_late.received) >= 2, 20)
    bus = await bus_for(system.nats.url)
    try:
        consumers = await bus.js.consumers_info(EVENTS_STREAM)
        assert len(consumers) == 1  # the running dispatcher's tail, and none per registration
        assert consumers[0].config.durable_name is None
        info = await bus.js.stream_info(EVENTS_STREAM)
        assert info.config.retention == RetentionPolicy.LIMITS
        # m0..m3 went while the stream was kept by interest; the rest stay, delivered or not
        assert (info.state.first_seq, info.state.messages) == (5, 8)
        dispatcher.stop(signal.SIGTERM)
        dispatcher.start()  # the migration again changes nothing
        await feed(bus, room, 100, 101)
        assert await wait_until(lambda: len(registered_late.received) >= 3, 20)
        assert len(await bus.positions.keys()) >= 2
    finally:
        await bus.close()
    await asyncio.sleep(0.5)
    assert numbers(delivered_before.received) == [*range(4, 12), 100]
    assert numbers(registered_late.received) == [10, 11, 100]


async def test_an_entry_that_is_no_registration_is_skipped_and_counted(
    system: System, receiver_factory: Any
) -> None:
    receiver = receiver_factory()
    bus = await bus_for(system.nats.url)
    try:
        await bus.subscriptions.put("sub_garbage", b"{not json")
        await bus.subscriptions.put("sub_halfway", b'{"id": "sub_halfway"}')
        dispatcher = system.service("dispatcher")
        dispatcher.start()  # restarts would throw at the same entry every time
        await register(bus, "Sane", receiver.url)
        await feed(bus, "Sane", 0, 3)
        assert numbers(receiver.wait_for(3)) == [0, 1, 2]
        dispatcher.stop(signal.SIGKILL)
        dispatcher.start()
        await feed(bus, "Sane", 3, 4)
        assert await wait_until(lambda: len(set(numbers(receiver.received))) == 4, 20)
    finally:
        await bus.close()
    assert metric(dispatcher.base_url, "dispatcher_unreadable_registrations_total") == 2
