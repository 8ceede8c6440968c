"""The chat's event payloads are `shared.events.to_json`, byte for byte; the publisher against a
real JetStream."""

from __future__ import annotations

import asyncio

import pytest
from nats.js.api import ConsumerConfig, DiscardPolicy

from services.chat.protocol import ChatError
from services.chat.publisher import Conflict, Publisher, _Acks, payload
from services.chat.settings import ChatSettings
from shared.bus import BusHolder
from shared.events import (
    ChatEvent,
    CreateEvent,
    DeleteEvent,
    EnterEvent,
    Event,
    ExitEvent,
    KickEvent,
    RingEvent,
    to_json,
)
from shared.natsclient import Client
from shared.subjects import EVENTS_STREAM
from tests.conftest import NatsServer


def test_payload_is_to_json_for_every_kind() -> None:
    events: list[Event] = [
        CreateEvent("Lobby"),
        EnterEvent("Lobby", "ann \u00e9", "10.0.0.1", 'say "hi"', "member"),
        ChatEvent("Lobby", "ann", "<b>&\u2603\ud83d\ude00"),
        RingEvent("Lobby", "ann", "bob"),
        KickEvent("Lobby", "mod", "bob", "ban"),
        ExitEvent("Lobby", "bob"),
        DeleteEvent("Lobby"),
    ]
    for event in events:
        assert payload(event) == to_json(event)


async def test_submitted_events_are_stored_in_order_or_refused(nats_server: NatsServer) -> None:
    """Against a real JetStream: every future resolves once its event is stored, in the order
    written, with its message id; a refusal (stream full) and a missing stream (503) fail the
    future with `unavailable`."""
    holder = BusHolder(ChatSettings(nats_url=nats_server.url), "test")
    holder.start()
    bus = await asyncio.wait_for(holder.wait(), 30)
    # interest retention keeps events only while a consumer still has to deliver them
    await bus.js.add_consumer(EVENTS_STREAM, ConsumerConfig(durable_name="keep"))
    publisher = Publisher(holder, timeout_s=5)
    events = [ChatEvent(f"room-{i % 3}", "ann", f"m{i}") for i in range(200)]
    ids = [publisher.new_id() for _ in events]
    futures = [await publisher.submit(e, i) for e, i in zip(events, ids, strict=True)]
    assert await asyncio.wait_for(asyncio.gather(*futures), 10) == list(range(1, 201))
    stored = [await bus.js.get_msg(EVENTS_STREAM, seq) for seq in range(1, 201)]
    assert [s.data for s in stored] == [payload(e) for e in events]
    assert [s.headers and s.headers["Nats-Msg-Id"] for s in stored] == ids

    # with the room's expected last sequence: stored only if nothing came in between
    room = events[-1].room  # its last event is at 200
    with pytest.raises(Conflict) as moved_on:
        await asyncio.wait_for(await publisher.submit(events[-1], "x1", expected=199), 10)
    assert moved_on.value.last_seq == 200
    ahead = await publisher.submit(ChatEvent(room, "ann", "next"), "x2", expected=200)
    assert await asyncio.wait_for(ahead, 10) == 201

    info = await bus.js.stream_info(EVENTS_STREAM)
    info.config.max_msgs = 201
    info.config.discard = DiscardPolicy.NEW
    await bus.js.update_stream(info.config)
    with pytest.raises(ChatError) as refused:
        await asyncio.wait_for(await publisher.submit(events[0], "x3"), 10)
    assert refused.value.code == "unavailable"

    await bus.js.delete_stream(EVENTS_STREAM)
    with pytest.raises(ChatError) as missing:
        await asyncio.wait_for(await publisher.submit(events[0], "x4"), 10)
    assert missing.value.code == "unavailable"
    await holder.close()


@pytest.mark.parametrize(
    ("answer", "last"),
    [
        (b'{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 7"}}', 7),
        # a clustered stream does not say the room's last sequence
        (b'{"error":{"code":400,"err_code":10164,"description":"wrong last sequence"}}', 0),
    ],
)
async def test_a_wrong_last_sequence_is_a_conflict(answer: bytes, last: int) -> None:
    acks = _Acks(Client())
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int] = loop.create_future()
    acks.waiting[1] = (future, loop.call_later(10, acks.expire, 1))
    acks._on_ack(f"{acks.inbox}.1".encode(), b"", answer, b"")
    with pytest.raises(Conflict) as conflict:
        await future
    assert conflict.value.last_seq == last
