"""The chat server's request handling with an in-memory stand-in for JetStream and the ban
bucket (the real ones are exercised end to end in tests/e2e/test_chat_*.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from services.chat.bans import Bans
from services.chat.connection import CLOSE_TOO_SLOW, Close, Connection
from services.chat.frames import Outgoing
from services.chat.protocol import ChatError
from services.chat.publisher import Publisher
from services.chat.server import CLOSE_KICKED, CLOSE_SHUTDOWN, ChatServer
from services.chat.settings import ChatSettings
from services.chat.token import mint
from shared.bus import BusHolder
from shared.events import DeleteEvent, EnterEvent, Event, ExitEvent, KickEvent

KEY = "server-unit-test-key-0123456789-0123456789"


class MemoryPublisher(Publisher):
    def __init__(self) -> None:
        self.stored: list[Event] = []
        self.down = False

    async def publish(
        self, events: Sequence[Event], *, msg_ids: Sequence[str] | None = None
    ) -> None:
        if self.down:
            raise ChatError("unavailable", "the event bus is unavailable; try again")
        self.stored.extend(events)

    async def submit(self, event: Event, msg_id: str | None = None) -> asyncio.Future[None]:
        await self.publish([event])
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        stored.set_result(None)
        return stored


class MemoryBans(Bans):
    def __init__(self) -> None:
        super().__init__(BusHolder(ChatSettings(), "test"), 60)
        self.banned: dict[str, float] = {}

    async def ban(self, host: str, member: str | None, by: str) -> None:
        self.banned[host] = self.duration_s
        if member:
            self.banned["member:" + member] = self.duration_s

    async def remaining(self, host: str, member: str | None) -> float:
        return max(self.banned.get(host, 0.0), self.banned.get(f"member:{member}", 0.0))


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def make_server(**settings: Any) -> tuple[ChatServer, MemoryPublisher, Clock]:
    publisher, clock = MemoryPublisher(), Clock()
    config = ChatSettings(**{"chat_jwt_secret": KEY, "chat_rate_limit": 0, **settings})
    return ChatServer(config, publisher, MemoryBans(), clock), publisher, clock


class MemoryLink:
    """Collects what the chat sends: frames' JSON and a `Close` at the end."""

    def __init__(self) -> None:
        self.sent: list[Outgoing | Close] = []
        self.behind = False  # the peer stopped reading

    def send_frame(self, frame: Outgoing) -> bool:
        if self.behind:
            return False
        self.sent.append(frame)
        return True

    def close_after(self, code: int, reason: str) -> None:
        self.sent.append(Close(code, reason))


class Client:
    def __init__(self, server: ChatServer, host: str = "10.0.0.1") -> None:
        self.server = server
        self.link = MemoryLink()
        self.conn = Connection(host, self.link, server.new_bucket())
        server.connect(self.conn)

    async def __call__(self, **frame: Any) -> None:
        await self.server.handle(self.conn, json.dumps(frame))

    def frames(self) -> list[Any]:
        out = [json.loads(f.text) if isinstance(f, Outgoing) else f for f in self.link.sent]
        self.link.sent.clear()
        return out


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
    assert publisher.stored == [
        KickEvent("A", "Mod", "Bob", "ban"),
        ExitEvent("A", "Bob"),
        ExitEvent("B", "Bob"),
        DeleteEvent("B"),
    ]
    assert bob1.frames()[-1] == Close(CLOSE_KICKED, "ban by A")
    assert bob2.frames()[-1] == Close(CLOSE_KICKED, "ban by A")
    assert bob1.conn.closing and bob2.conn.closing
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
    await server.shutdown(1.0)
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
    ann, bob = Client(server), Client(server)
    await ann(op="enter", room="Lobby", user="ann")
    await bob(op="enter", room="Lobby", user="bob")
    ann.frames()
    bob.frames()
    bob.link.behind = True
    await ann(op="chat", room="Lobby", message="one")
    await ann(op="chat", room="Lobby", message="two")
    assert bob.frames() == [Close(CLOSE_TOO_SLOW, "client too slow")]
    assert bob.conn.closed
    assert [f["message"] for f in ann.frames()] == ["one", "two"]


async def test_the_requesters_copy_is_the_broadcast_frame_with_its_id() -> None:
    server, _, _ = make_server()
    ann, bob = Client(server), Client(server)
    await ann(op="enter", room="Lobby", user="ann")
    await bob(op="enter", room="Lobby", user="bob")
    ann.frames()
    bob.frames()
    await ann(op="chat", room="Lobby", message='say "hi" \u00e9', id="x\u00e9")
    copy = ann.link.sent[0]
    other = bob.link.sent[0]
    assert isinstance(copy, Outgoing) and isinstance(other, Outgoing)
    body = {"op": "chat", "room": "Lobby", "user": "ann", "message": 'say "hi" \u00e9'}
    assert json.loads(other.text) == body
    assert copy.text == json.dumps({**body, "id": "x\u00e9"}, separators=(",", ":"))


class HeldAcksPublisher(MemoryPublisher):
    """Chats and rings are 'stored' when written; their acks are released by the test."""

    def __init__(self) -> None:
        super().__init__()
        self.acks: list[asyncio.Future[None]] = []
        self._grew = asyncio.Event()

    async def wait_for_acks(self, n: int) -> None:
        while len(self.acks) < n:
            self._grew.clear()
            await self._grew.wait()

    async def submit(self, event: Event, msg_id: str | None = None) -> asyncio.Future[None]:
        self.stored.append(event)
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        self._grew.set()
        return ack


async def test_a_rooms_chats_are_in_flight_together_and_fan_out_in_stream_order() -> None:
    publisher = HeldAcksPublisher()
    config = ChatSettings(chat_jwt_secret=KEY, chat_rate_limit=0)
    server = ChatServer(config, publisher, MemoryBans(), Clock())
    ann, bob = Client(server), Client(server)
    await ann(op="enter", room="Lobby", user="ann")
    await bob(op="enter", room="Lobby", user="bob")
    ann.frames()
    bob.frames()
    first = asyncio.create_task(ann(op="chat", room="Lobby", message="1", id=1))
    second = asyncio.create_task(bob(op="chat", room="Lobby", message="2", id=2))
    await publisher.wait_for_acks(2)  # both published before either is acknowledged
    assert [e.message for e in publisher.stored[-2:]] == ["1", "2"]  # type: ignore[union-attr]
    assert ann.frames() == bob.frames() == []  # nothing goes out before its ack
    publisher.acks[1].set_result(None)  # the later one's ack first
    await asyncio.sleep(0)
    assert ann.frames() == bob.frames() == []  # it waits for the earlier one
    exit_ = asyncio.create_task(bob(op="exit", room="Lobby"))
    await asyncio.sleep(0)
    assert len(publisher.stored) == 4  # the exit waits for the room's chats to go out
    publisher.acks[0].set_result(None)
    await asyncio.gather(first, second, exit_)
    assert [(f["op"], f.get("message"), f.get("id")) for f in ann.frames()] == [
        ("chat", "1", 1),
        ("chat", "2", None),
        ("exit", None, None),
    ]
    assert [(f["op"], f.get("id")) for f in bob.frames()] == [
        ("chat", None),
        ("chat", 2),
        ("exit", None),
    ]
    assert publisher.stored[-1] == ExitEvent("Lobby", "bob")


async def test_a_chat_jetstream_refused_is_unavailable_and_the_next_still_goes_out() -> None:
    publisher = HeldAcksPublisher()
    config = ChatSettings(chat_jwt_secret=KEY, chat_rate_limit=0)
    server = ChatServer(config, publisher, MemoryBans(), Clock())
    ann, bob = Client(server), Client(server)
    await ann(op="enter", room="Lobby", user="ann")
    await bob(op="enter", room="Lobby", user="bob")
    ann.frames()
    bob.frames()
    first = asyncio.create_task(ann(op="chat", room="Lobby", message="1", id=1))
    second = asyncio.create_task(bob(op="chat", room="Lobby", message="2"))
    await publisher.wait_for_acks(2)
    publisher.acks[0].set_exception(ChatError("unavailable", "the event bus did not take it"))
    publisher.acks[1].set_result(None)
    await asyncio.gather(first, second)
    # the refusal is the reply to ann's request; bob's chat went out when its ack came
    assert sorted((f["op"], f.get("code"), f.get("id")) for f in ann.frames()) == [
        ("chat", None, None),
        ("error", "unavailable", 1),
    ]
    assert [f.get("message") for f in bob.frames()] == ["2"]
