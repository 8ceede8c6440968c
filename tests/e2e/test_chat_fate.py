"""An event's fate is known before the room moves on (issue 14 #2, #3): an `exit` reaches the
stream however long NATS is away, and a request whose acknowledgement is lost or late is sent
again under its message id, never answered `unavailable` yet stored."""

from __future__ import annotations

import asyncio

import pytest

from shared.events import ChatEvent, CreateEvent, EnterEvent, ExitEvent
from tests.chat.wsclient import Client, register, room_events
from tests.conftest import CallbackReceiver, System

pytestmark = pytest.mark.e2e


async def test_acks_slower_than_the_timeout_store_each_request_once(
    system: System, receiver_factory: object
) -> None:
    receiver: CallbackReceiver = receiver_factory()  # type: ignore[operator]
    registry, _, chat = system.start_all(
        receiver.url, CHAT_PUBLISH_TIMEOUT_S="0.0001", CHAT_HOST_CONNECTIONS="0"
    )
    room = "Slow acks"
    register(registry.base_url, room, receiver.url)
    ann, bob = await Client.connect(chat.port), await Client.connect(chat.port)
    await ann.enter(room, "ann", id=1)  # every ack comes too late: answered all the same
    await bob.enter(room, "bob", id=2)
    for i in range(5):
        await ann.send(op="chat", room=room, message=f"m{i}", id=f"c{i}")
        assert (await ann.recv_op("chat"))["id"] == f"c{i}"
    events = [e for e, _ in await room_events(receiver, room, 8)]
    await asyncio.sleep(1)  # nothing more comes
    assert (
        [e for e, _ in await room_events(receiver, room, 0)]
        == events
        == [
            CreateEvent(room),
            EnterEvent(room, "ann", "127.0.0.1", ""),
            EnterEvent(room, "bob", "127.0.0.1", ""),
            *[ChatEvent(room, "ann", f"m{i}") for i in range(5)],
        ]
    )


@pytest.mark.timeout(180)
async def test_an_exit_reaches_the_callbacks_after_nats_was_away_over_a_minute(
    system: System, receiver_factory: object
) -> None:
    receiver: CallbackReceiver = receiver_factory()  # type: ignore[operator]
    registry, _, chat = system.start_all(receiver.url)
    room = "Long outage"
    register(registry.base_url, room, receiver.url)
    ann = await Client.connect(chat.port)
    await ann.enter(room, "ann")
    await room_events(receiver, room, 2)
    system.nats.stop()
    await ann.close()  # the user leaves while NATS is away
    await asyncio.sleep(65)  # longer than the chat used to try before giving the exit up
    system.nats.start()
    events = [e for e, _ in await room_events(receiver, room, 4, within_s=60)]
    assert events == [
        CreateEvent(room),
        EnterEvent(room, "ann", "127.0.0.1", ""),
        ExitEvent(room, "ann"),
        events[3],
    ]
    assert events[3].kind == "delete"
