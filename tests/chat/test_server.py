"""The chat server's request handling with an in-memory stand-in for the events stream and the
ban bucket (tests/chat/memory.py; the real ones are exercised end to end in
tests/e2e/test_chat_*.py)."""

from __future__ import annotations

import asyncio
import json

from services.chat.cluster import Cluster
from services.chat.connection import CLOSE_TOO_SLOW, Close
from services.chat.frames import Outgoing
from services.chat.server import CLOSE_FENCED, CLOSE_KICKED, CLOSE_SHUTDOWN
from services.chat.settings import ChatSettings
from services.chat.token import mint
from shared.bus import BusHolder
from shared.events import ChatEvent, CreateEvent, DeleteEvent, EnterEvent, ExitEvent, KickEvent
from tests.chat.memory import KEY, Client, in_lobby, make_server


async def test_flood_control_refuses_any_frame_over_the_limit() -> None:
    server, _, clock = make_server(chat_rate_limit=1, chat_rate_burst=2)
    c = Client(server)
    await c(op="enter", room="Lobby", user="ann")
    await c(op="chat", room="Lobby", message="1", id=1)
    await c(op="chat", room="Lobby", message="2", id=2)
    await c.server.handle(c.conn, "garbage")
    server.refuse(c.conn, "bad_request", "binary")
    frames = c.frames()
    assert [f["op"] for f in frames] == ["entered", "chat", "error", "error", "error"]
    assert frames[2] == {**frames[2], "code": "rate_limited", "id": 2}
    assert frames[3]["code"] == frames[4]["code"] == "rate_limited"
    clock.now = 1.0
    await c(op="chat", room="Lobby", message="3")
    assert c.frames()[0]["op"] == "chat"


async def test_unavailable_changes_nothing() -> None:
    server, publisher, _ = make_server()
    ann, bob = Client(server), Client(server)
    await ann(op="enter", room="Den", user="ann")
    publisher.down = True
    await bob(op="enter", room="Den", user="bob", id="b")
    assert bob.frames() == [
        {
            "op": "error",
            "code": "unavailable",
            "message": "the event bus is unavailable; try again",
            "id": "b",
        }
    ]
    room = server.rooms.get("Den")
    assert room is not None and list(room.members) == ["ann"]
    assert [f["op"] for f in ann.frames()] == ["entered"]  # nothing was broadcast


async def test_disconnect_kick_reaches_every_connection_of_the_member() -> None:
    server, publisher, _ = make_server()
    mod, bob1, bob2 = Client(server), Client(server, "10.0.0.2"), Client(server, "10.0.0.3")
    await mod(op="enter", room="A", token=mint("Mod", "monitor", KEY))
    await bob1(op="enter", room="A", token=mint("Bob", "member", KEY))
    await bob2(op="enter", room="B", token=mint("Bob", "member", KEY))
    for c in (mod, bob1, bob2):
        c.frames()
    publisher.stored.clear()
    await mod(op="kick", room="A", to="Bob", type="ban", id=9)
    assert publisher.stored == [KickEvent("A", "Mod", "Bob", "ban"), ExitEvent("A", "Bob")]
    assert bob1.frames()[-1] == Close(CLOSE_KICKED, "ban by A")
    assert bob2.frames()[-1] == Close(CLOSE_KICKED, "ban by A")
    assert bob1.conn.closing and bob2.conn.closing
    for kicked in (bob1, bob2):  # their sockets close: each leaves what it is still in
        await server.disconnect(kicked.conn)
    assert publisher.stored[2:] == [ExitEvent("B", "Bob"), DeleteEvent("B")]
    assert mod.frames()[0]["id"] == 9
    again = Client(server, "10.0.0.2")  # the kicked connection's host
    await again(op="enter", room="C", user="someone")
    assert again.frames()[0]["code"] == "banned"


async def test_shutdown_exits_everyone() -> None:
    server, publisher, _ = make_server()
    ann, bob = Client(server), Client(server)
    await ann(op="enter", room="Lobby", user="ann")
    await bob(op="enter", room="Den", user="bob")
    publisher.stored.clear()
    await Cluster(server, BusHolder(ChatSettings(), "test")).shutdown(1.0)
    assert sorted(publisher.stored, key=str) == sorted(
        [ExitEvent("Lobby", "ann"), ExitEvent("Den", "bob"), DeleteEvent("Den")], key=str
    )
    assert publisher.stored.index(DeleteEvent("Den")) > publisher.stored.index(
        ExitEvent("Den", "bob")
    )
    assert ann.frames()[-1] == Close(CLOSE_SHUTDOWN, "the chat server is shutting down")
    await ann(op="enter", room="Lobby", user="late")  # nothing is handled any more
    assert ann.frames() == []


async def test_member_enters_under_the_token_name() -> None:
    server, publisher, _ = make_server()
    c = Client(server)
    await c(op="enter", room="Lobby", user="whatever", token=mint("Zed", "member", KEY))
    assert publisher.stored == [EnterEvent("Lobby", "Zed", "10.0.0.1", "", "member")]
    long_name = Client(server)
    await long_name(op="enter", room="Lobby", token=mint("x" * 21, "member", KEY))
    assert long_name.frames()[0]["code"] == "not_allowed"


async def test_a_client_too_slow_to_read_is_dropped_not_buffered() -> None:
    server, _, _ = make_server()
    ann, bob = await in_lobby(server)
    bob.link.behind = True
    await ann(op="chat", room="Lobby", message="one")
    await ann(op="chat", room="Lobby", message="two")
    assert bob.frames() == [Close(CLOSE_TOO_SLOW, "client too slow")]
    assert bob.conn.closed
    assert [f["message"] for f in ann.frames()] == ["one", "two"]


async def test_the_requesters_copy_is_the_broadcast_frame_with_its_id() -> None:
    server, _, _ = make_server()
    ann, bob = await in_lobby(server)
    await ann(op="chat", room="Lobby", message='say "hi" \u00e9', id="x\u00e9")
    copy = ann.link.sent[0]
    other = bob.link.sent[0]
    assert isinstance(copy, Outgoing) and isinstance(other, Outgoing)
    body = {"op": "chat", "room": "Lobby", "user": "ann", "message": 'say "hi" \u00e9', "seq": 3}
    assert json.loads(other.text) == body
    assert copy.text == json.dumps({**body, "id": "x\u00e9"}, separators=(",", ":"))


async def test_a_rooms_chats_are_in_flight_together_and_go_out_in_stream_order() -> None:
    server, stream, _ = make_server()
    ann, bob = await in_lobby(server)
    stream.held = []  # the stream stores, but hands nothing back until released
    first = asyncio.create_task(ann(op="chat", room="Lobby", message="1", id=1))
    second = asyncio.create_task(bob(op="chat", room="Lobby", message="2", id=2))
    await stream.until(held=2)  # both published before either came back
    assert ann.frames() == bob.frames() == []  # nothing goes out before the stream has it
    stream.release()
    await asyncio.gather(first, second)
    assert [(f["message"], f.get("id")) for f in ann.frames()] == [("1", 1), ("2", None)]
    assert [(f["message"], f.get("id")) for f in bob.frames()] == [("1", None), ("2", 2)]


async def test_a_chat_the_stream_refused_is_unavailable_and_changes_nothing() -> None:
    server, stream, _ = make_server()
    ann, bob = await in_lobby(server)
    stream.down = True
    await ann(op="chat", room="Lobby", message="1", id=1)
    stream.down = False
    await bob(op="chat", room="Lobby", message="2")
    assert [(f["op"], f.get("code"), f.get("id")) for f in ann.frames()] == [
        ("error", "unavailable", 1),
        ("chat", None, None),
    ]
    assert [f.get("message") for f in bob.frames()] == ["2"]


async def test_an_enter_planned_on_a_room_another_replica_changed_is_planned_again() -> None:
    server, stream, _ = make_server(chat_room_limit=2)
    ann = Client(server)
    await ann(op="enter", room="Den", user="ann")
    # another replica's user takes the last place; this replica has not read it yet
    stream.held = []
    stream.inject(EnterEvent("Den", "zoe", "10.9.9.9", "", "non-member"), {})
    bob = Client(server)
    entering = asyncio.create_task(bob(op="enter", room="Den", user="bob", id="b"))
    await stream.until(conflicts=1)  # planned on the old room: refused
    stream.release()
    await entering
    [refused] = bob.frames()
    assert refused["code"] == "room_full" and refused["id"] == "b"
    assert stream.stored == [
        CreateEvent("Den"),
        EnterEvent("Den", "ann", "10.0.0.1", "", "non-member"),
        EnterEvent("Den", "zoe", "10.9.9.9", "", "non-member"),
    ]
    room = server.rooms.get("Den")
    assert room is not None and list(room.members) == ["ann", "zoe"]
    assert room.members["zoe"].conn is None  # held by another replica


async def test_an_enter_whose_ack_was_lost_is_sent_again_and_stored_once() -> None:
    server, stream, _ = make_server()
    ann = Client(server)
    stream.lose_acks = 2  # the room's create and the enter are stored, their acks lost
    await ann(op="enter", room="Den", user="ann", id="a")
    assert stream.stored == [
        CreateEvent("Den"),
        EnterEvent("Den", "ann", "10.0.0.1", "", "non-member"),
    ]
    [entered] = ann.frames()
    assert entered["op"] == "entered" and entered["id"] == "a"


async def test_an_exit_is_stored_however_long_the_stream_is_away() -> None:
    server, stream, _ = make_server()
    ann, bob = Client(server), Client(server)
    await ann(op="enter", room="Lobby", user="ann")
    await bob(op="enter", room="Lobby", user="bob")
    bob.frames()
    stream.down = True
    leaving = asyncio.create_task(server.disconnect(ann.conn))
    await asyncio.sleep(2.5)  # several retries: nothing stored, nothing shown
    assert not leaving.done() and bob.frames() == []
    stream.down = False
    await leaving
    assert stream.stored[-1] == ExitEvent("Lobby", "ann")
    assert bob.frames() == [{"op": "exit", "room": "Lobby", "user": "ann"}]


async def test_a_chat_stored_by_another_replica_reaches_this_replicas_members() -> None:
    server, stream, _ = make_server()
    ann = Client(server)
    await ann(op="enter", room="Lobby", user="ann")
    stream.inject(EnterEvent("Lobby", "zoe", "10.9.9.9", "", "non-member"), {})
    stream.inject(ChatEvent("Lobby", "zoe", "hello"), {})
    await asyncio.sleep(0)
    assert ann.frames()[1:] == [
        {"op": "enter", "room": "Lobby", "user": "zoe", "profile": "", "type": "non-member"},
        {"op": "chat", "room": "Lobby", "user": "zoe", "message": "hello"},
    ]


async def test_a_chat_whose_ack_was_lost_is_sent_again_and_never_called_unavailable() -> None:
    server, stream, _ = make_server()
    ann, bob = await in_lobby(server)
    stream.lose_acks = 1  # stored, its answer lost
    await ann(op="chat", room="Lobby", message="once", id=5)
    assert stream.stored.count(ChatEvent("Lobby", "ann", "once")) == 1
    assert ann.frames() == [
        {"op": "chat", "room": "Lobby", "user": "ann", "message": "once", "id": 5}
    ]
    assert [f["message"] for f in bob.frames()] == ["once"]


async def test_a_chat_whose_fate_is_unknown_when_the_replica_is_fenced_is_never_refused() -> None:
    server, stream, _ = make_server()
    ann = Client(server)
    await ann(op="enter", room="Lobby", user="ann")
    ann.frames()
    stream.lose_acks = 1  # stored, its answer lost; then this replica is cut off
    server.replicas.last_beat = float("-inf")
    await ann(op="chat", room="Lobby", message="maybe", id=6)
    assert ann.frames()[-1] == Close(CLOSE_FENCED, "lost touch with the event bus; reconnect")
    assert not any(f.get("code") == "unavailable" for f in ann.frames() if isinstance(f, dict))
    assert stream.stored.count(ChatEvent("Lobby", "ann", "maybe")) == 1
