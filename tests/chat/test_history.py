"""A room's history in `entered`, and the replay of what a client coming back with `since`
missed (docs/websocket.md, "History" and "Recovery"), with the in-memory stand-in for the events
stream (tests/chat/memory.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.chat.frames import Outgoing
from services.chat.recovery import Read, Recovery
from services.chat.snapshots import decode, encode
from shared.events import ChatEvent, EnterEvent, Event, ExitEvent, RingEvent
from shared.since import rfc3339
from tests.chat.memory import EPOCH, Client, MemoryStream, make_server


def sent(client: Client) -> list[dict[str, Any]]:
    """Every frame sent to the client since the last call, `seq` included."""
    frames = [json.loads(f.text) for f in client.link.sent if isinstance(f, Outgoing)]
    client.link.sent.clear()
    return frames


async def chats(client: Client, room: str, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        await client(op="chat", room=room, message=f"m{i}")


async def test_entered_carries_the_last_chats_oldest_first_with_their_time() -> None:
    server, _, _ = make_server()
    ann, bob = Client(server), Client(server)
    await ann(op="enter", room="Den", user="ann")
    await chats(ann, "Den", 60)
    said = [f for f in sent(ann) if f["op"] == "chat"]
    await ann(op="ring", room="Den", to="ann")  # rings are no part of the history
    await bob(op="enter", room="Den", user="bob", id=7)
    [entered] = sent(bob)
    assert entered["id"] == 7
    assert entered["history"] == [
        {
            "user": "ann",
            "message": f["message"],
            "at": rfc3339(EPOCH + f["seq"], 6),
            "seq": f["seq"],
        }
        for f in said[10:]
    ]
    assert [h["message"] for h in entered["history"]] == [f"m{i}" for i in range(10, 60)]
    assert "gap" not in entered
    await ann(op="chat", room="Den", message="one more")
    carl = Client(server)  # the messages encoded for bob's `entered` are listed again
    await carl(op="enter", room="Den", user="carl")
    history = sent(carl)[0]["history"]
    assert history[:-1] == entered["history"][1:]
    assert history[-1]["message"] == "one more"


async def test_history_size_is_a_setting_and_zero_sends_none() -> None:
    for size, expected in ((0, []), (3, ["m2", "m3", "m4"])):
        server, _, _ = make_server(chat_history=size)
        ann, bob = Client(server), Client(server)
        await ann(op="enter", room="Den", user="ann")
        await chats(ann, "Den", 5)
        await bob(op="enter", room="Den", user="bob")
        [entered] = sent(bob)
        assert [h["message"] for h in entered["history"]] == expected


async def test_a_dynamic_room_made_again_starts_without_history() -> None:
    server, _, _ = make_server()
    ann, bob = Client(server), Client(server)
    await ann(op="enter", room="Den", user="ann")
    await chats(ann, "Den", 2)
    await ann(op="exit", room="Den")  # the room is deleted
    await bob(op="enter", room="Den", user="bob")
    assert sent(bob)[0]["history"] == []


async def test_a_room_restored_from_a_snapshot_keeps_its_history() -> None:
    server, _, _ = make_server()
    ann = Client(server)
    await ann(op="enter", room="Lobby", user="ann")
    await chats(ann, "Lobby", 3)
    room = server.rooms.get("Lobby")
    assert room is not None
    name, seq, members, history = decode(encode(room))
    assert (name, seq, [m.user for m in members]) == ("Lobby", room.seq, ["ann"])
    assert history == list(room.history)
    other, _, _ = make_server(chat_history=2)
    other.fold.restore(name, seq, members, history)
    restored = other.rooms.get("Lobby")
    assert restored is not None and list(restored.history) == history[1:]  # its own size


def test_a_snapshot_saved_before_rooms_had_a_history_has_none() -> None:
    old = b'{"room": "R", "seq": 4, "members": []}'
    assert decode(old) == ("R", 4, [], [])


async def joined_and_left(stream: MemoryStream | None = None, **settings: Any) -> tuple[Any, ...]:
    """ann enters Den and leaves (her connection drops) having seen up to `since`; meanwhile bob
    stays and sees everything."""
    server, stream, _ = make_server(stream, **settings)
    ann, bob = Client(server), Client(server)
    await bob(op="enter", room="Den", user="bob")
    await ann(op="enter", room="Den", user="ann")
    await bob(op="chat", room="Den", message="hi ann")
    since = sent(ann)[-1]["seq"]
    await server.disconnect(ann.conn)
    return server, stream, bob, since


async def test_coming_back_with_since_replays_what_was_missed_then_entered() -> None:
    server, stream, bob, since = await joined_and_left()
    carl = Client(server)
    await carl(op="enter", room="Den", user="carl")
    await bob(op="chat", room="Den", message="where is ann?")
    await bob(op="ring", room="Den", to="carl")  # rings are not replayed
    await carl(op="exit", room="Den")
    stream.inject(ChatEvent("Elsewhere", "zed", "not this room"), {})
    seen = [f for f in sent(bob) if f["seq"] > since and f["op"] != "ring"]
    back = Client(server)
    await back(op="enter", room="Den", user="ann", since=since, id="r")
    frames = sent(back)
    replayed, [entered] = frames[:-1], frames[-1:]
    assert [f["op"] for f in seen] == ["exit", "enter", "chat", "exit"]  # ann's own exit first
    assert replayed == [{**f, "replay": True} for f in seen]
    assert entered["op"] == "entered" and entered["id"] == "r" and "gap" not in entered
    assert entered["seq"] > replayed[-1]["seq"]
    assert [m["user"] for m in entered["members"]] == ["bob", "ann"]


async def test_since_at_the_rooms_last_event_replays_nothing_and_no_gap() -> None:
    server, stream, _, since = await joined_and_left()
    stream.discard(below=stream.seq + 1)  # the stream holds nothing: nothing was missed
    back = Client(server)
    last = server.rooms.seq_of("Den")
    await back(op="enter", room="Den", user="ann", since=last)
    [entered] = sent(back)
    assert "gap" not in entered and entered["op"] == "entered"
    assert since < last


async def test_events_gone_from_the_stream_are_a_gap() -> None:
    server, stream, bob, since = await joined_and_left()
    await chats(bob, "Den", 3)
    stream.discard(below=since + 2)  # ann's exit is gone, the chats are held
    back = Client(server)
    await back(op="enter", room="Den", user="ann", since=since)
    frames = sent(back)
    assert [f.get("message") for f in frames[:-1]] == ["m0", "m1", "m2"]
    assert frames[-1]["op"] == "entered" and frames[-1]["gap"] is True


async def test_a_client_too_far_behind_gets_no_replay_and_a_gap_but_the_history() -> None:
    server, _, bob, since = await joined_and_left(chat_replay_max=3)
    await chats(bob, "Den", 3)  # with ann's exit, 4 events after since
    back = Client(server)
    await back(op="enter", room="Den", user="ann", since=since)
    [entered] = sent(back)
    assert entered["gap"] is True
    assert [h["message"] for h in entered["history"]] == ["hi ann", "m0", "m1", "m2"]
    exactly, _, bob, since = await joined_and_left(chat_replay_max=4)
    await chats(bob, "Den", 3)
    back = Client(exactly)
    await back(op="enter", room="Den", user="ann", since=since)
    frames = sent(back)
    assert len(frames) == 5 and "gap" not in frames[-1]


async def test_a_since_this_room_never_had_is_a_gap() -> None:
    server, _, _, _ = await joined_and_left()
    back = Client(server)
    await back(op="enter", room="Den", user="ann", since=10**6)
    [entered] = sent(back)
    assert entered["gap"] is True


async def test_events_stored_while_the_replay_is_read_are_replayed_too() -> None:
    stream = MemoryStream()
    server, stream, bob, since = await joined_and_left(stream)
    await chats(bob, "Den", 300)  # more than one batch
    injected: list[int] = []

    def another_replica() -> None:
        if not injected:
            injected.append(stream.inject(EnterEvent("Den", "zoe", "h", "", "non-member"), {}))

    stream.on_read = another_replica
    back = Client(server)
    await back(op="enter", room="Den", user="ann", since=since)
    frames = sent(back)
    assert frames[-1]["op"] == "entered" and "gap" not in frames[-1]
    replayed = frames[:-1]
    assert [f["seq"] for f in replayed] == sorted({f["seq"] for f in replayed})
    assert replayed[-1] == {
        "op": "enter",
        "room": "Den",
        "user": "zoe",
        "profile": "",
        "type": "non-member",
        "seq": injected[0],
        "replay": True,
    }
    assert len(replayed) == 1 + 300 + 1  # ann's exit, the chats, zoe
    assert stream.reads >= 2


async def test_a_refused_enter_reads_nothing() -> None:
    server, stream, _, since = await joined_and_left()
    again = Client(server)
    await again(op="enter", room="Den", user="bob", since=since)
    assert sent(again)[0]["code"] == "name_taken"
    assert stream.reads == 0


class Listed:
    """A `RoomReader` over a fixed list, one event at a time."""

    def __init__(self, events: Read, first: int) -> None:
        self.events = events
        self.first = first

    async def room_events(self, room: str, after: int, count: int) -> tuple[Read, bool]:
        later = [(seq, e) for seq, e in self.events if seq > after]
        return later[:1], len(later) <= 1

    async def first_seq(self) -> int:
        return self.first


async def test_recovery_passes_over_what_it_cannot_replay() -> None:
    events: list[tuple[int, Event | None]] = [
        (3, ChatEvent("R", "a", "x")),
        (4, None),  # not an event
        (6, RingEvent("R", "a", "b")),
        (8, ExitEvent("R", "a")),
        (9, ChatEvent("R", "a", "later")),
    ]
    recovery = Recovery(2, limit=10)
    reader = Listed(events, first=1)
    while not recovery.ready(8):
        await recovery.read(reader, "R", 8)
    assert recovery.events == [(3, ChatEvent("R", "a", "x")), (8, ExitEvent("R", "a"))]
    assert recovery.after == 8 and not recovery.gap(8)
    assert Recovery(2, limit=10).gap(1)  # a since beyond the room's last event


class Chunked(Listed):
    """A `RoomReader` over a list of several rooms' events, answering `sizes` at a time."""

    def __init__(self, events: Read, first: int, sizes: list[int]) -> None:
        super().__init__(events, first)
        self.sizes = sizes

    async def room_events(self, room: str, after: int, count: int) -> tuple[Read, bool]:
        later: Read = [(s, e) for s, e in self.events if s > after and e and e.room == room]
        size = min(count, self.sizes[len(later) % len(self.sizes)])
        return later[:size], len(later) <= size


kinds = st.sampled_from(["chat", "ring", "enter", "exit", "other room"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(kinds, max_size=30),
    st.integers(0, 30),
    st.integers(-3, 20),
    st.integers(0, 12),
    st.integers(-2, 2),
    st.lists(st.integers(1, 5), min_size=1, max_size=4),
)
def test_recovery_holds_exactly_the_rooms_events_after_since_or_says_gap(
    made: list[str], since: int, last_shift: int, limit: int, first_shift: int, sizes: list[int]
) -> None:
    """The room's last event about `last_shift` after `since`, the stream's first held one
    about `since + 1`: around the edges that matter."""
    last_cut, first = since + last_shift, max(1, since + 1 + first_shift)

    def event(kind: str) -> Event:
        of_room: dict[str, Event] = {
            "chat": ChatEvent("R", "a", "x"),
            "ring": RingEvent("R", "a", "b"),
            "enter": EnterEvent("R", "a", "h", "", "non-member"),
            "exit": ExitEvent("R", "a"),
        }
        return of_room.get(kind, ChatEvent("S", "a", "elsewhere"))

    held: Read = [(n, event(k)) for n, k in enumerate(made, 1) if n >= first]
    room = [n for n, e in held if e and e.room == "R"]
    last = max([n for n in room if n <= last_cut], default=0)  # the room's last sequence
    recovery = Recovery(since, limit)
    reader = Chunked(held, first, sizes)

    async def recover() -> None:
        while not recovery.ready(last):
            await recovery.read(reader, "R", last)

    asyncio.run(recover())
    after = [(n, e) for n, e in held if e and e.room == "R" and since < n <= last]
    if len(after) > limit:
        assert recovery.events == [] and recovery.gap(last)
        return
    assert recovery.events == [(n, e) for n, e in after if not isinstance(e, RingEvent)]
    lost = first > since + 1 and last > since
    assert recovery.gap(last) == (lost or since > last)
