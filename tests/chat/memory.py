"""An in-memory stand-in for the events stream and the ban bucket, for the chat server's unit
tests (the real ones are exercised end to end in tests/e2e/test_chat_*.py).

`MemoryStream` checks the expected last sequence of a room as JetStream does, and hands every
stored event back to the server's room log on the next turn of the event loop, as the ordered
consumer would; `held` keeps them until `release`, and `inject` stores an event as another
replica would have. It answers a room's events as direct gets would (`room_events`), and
`discard` drops the oldest as the stream's limits would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from services.chat.bans import Bans
from services.chat.connection import Close, Connection
from services.chat.frames import Outgoing
from services.chat.protocol import ChatError
from services.chat.publisher import Conflict, Publisher
from services.chat.recovery import Read
from services.chat.replicas import Replicas
from services.chat.server import ChatServer
from services.chat.settings import ChatSettings
from shared.bus import BusHolder
from shared.events import Event

KEY = "server-unit-test-key-0123456789-0123456789"
EPOCH = 1_800_000_000.0  # the stored time of event n is EPOCH + n

__all__ = [
    "EPOCH",
    "KEY",
    "Client",
    "Clock",
    "MemoryBans",
    "MemoryStream",
    "in_lobby",
    "make_server",
]


class MemoryStream(Publisher):
    def __init__(self) -> None:
        self.server: ChatServer | None = None
        self.stored: list[Event] = []
        self.seq = 0
        self.last: dict[str, int] = {}  # per room, the last sequence
        self.down = False  # nothing can be sent
        self.lose_acks = 0  # the next n acks are lost (the events are stored all the same)
        self.held: list[tuple[int, Event, dict[str, str]]] | None = None
        self.conflicts = 0  # publishes refused for a wrong expected sequence
        self.ids: dict[str, int] = {}  # message id -> the sequence it was stored at
        self.changed = asyncio.Event()  # set whenever something is stored or refused
        self.log: list[tuple[int, Event]] = []  # every event the stream holds, in order
        self.reads = 0  # `room_events` answered
        self.on_read: Callable[[], None] | None = None  # called as a read is answered
        self._ids = 0

    async def room_events(self, room: str, after: int, count: int) -> tuple[Read, bool]:
        await asyncio.sleep(0)  # an answer comes back later, as from NATS
        self.reads += 1
        if self.on_read is not None:
            self.on_read()
        found = [(seq, e) for seq, e in self.log if seq > after and e.room == room]
        batch: Read = list(found[:count])
        return batch, len(found) <= count

    async def first_seq(self) -> int:
        await asyncio.sleep(0)
        return self.log[0][0] if self.log else self.seq + 1

    def discard(self, below: int) -> None:
        """The stream drops its events before `below`, as its age or size limit would."""
        self.log = [(seq, e) for seq, e in self.log if seq >= below]
        if not self.log:
            self.seq = max(self.seq, below - 1)

    async def until(self, held: int = 0, conflicts: int = 0) -> None:
        """Until at least that many events are held and publishes refused."""
        while len(self.held or ()) < held or self.conflicts < conflicts:
            self.changed.clear()
            await self.changed.wait()

    def new_id(self) -> str:
        self._ids += 1
        return f"m{self._ids}"

    async def submit(
        self,
        event: Event,
        msg_id: str,
        *,
        expected: int | None = None,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> asyncio.Future[int]:
        if self.down:
            raise ChatError("unavailable", "the event bus is unavailable; try again")
        ack: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        last = self.last.get(event.room, 0)
        if expected is not None and expected != last:
            self.conflicts += 1
            self.changed.set()
            ack.set_exception(Conflict(last))
            return ack
        if msg_id in self.ids:  # JetStream's duplicate window (checked after the expected seq)
            ack.set_result(self.ids[msg_id])
            return ack
        seq = self.ids[msg_id] = self.inject(event, {"Nats-Msg-Id": msg_id, **dict(extra)})
        if self.lose_acks:
            self.lose_acks -= 1
            ack.set_exception(ChatError("unavailable", "no acknowledgement in time"))
        else:
            ack.set_result(seq)
        return ack

    def inject(self, event: Event, headers: dict[str, str]) -> int:
        self.seq += 1
        self.last[event.room] = self.seq
        self.stored.append(event)
        self.log.append((self.seq, event))
        self.changed.set()
        if self.held is not None:
            self.held.append((self.seq, event, headers))
        else:
            asyncio.get_running_loop().call_soon(self._deliver, self.seq, event, headers)
        return self.seq

    def release(self) -> None:
        held, self.held = self.held or [], None
        for item in held:
            self._deliver(*item)

    def _deliver(self, seq: int, event: Event, headers: dict[str, str]) -> None:
        assert self.server is not None
        self.server.roomlog.deliver(seq, event, headers, EPOCH + seq)


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


def make_server(
    stream: MemoryStream | None = None, **settings: Any
) -> tuple[ChatServer, MemoryStream, Clock]:
    stream, clock = stream or MemoryStream(), Clock()
    config = ChatSettings(**{"chat_jwt_secret": KEY, "chat_rate_limit": 0, **settings})
    server = ChatServer(config, stream, MemoryBans(), Replicas(8.0, 1), stream, clock)
    server.replicas.last_beat = float("inf")  # never fenced
    server.serving = True
    stream.server = server
    return server, stream, clock


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
        """What was sent since the last call; room frames without their `seq`."""
        out: list[Any] = []
        for f in self.link.sent:
            if isinstance(f, Outgoing):
                frame = json.loads(f.text)
                frame.pop("seq", None)
                out.append(frame)
            else:
                out.append(f)
        self.link.sent.clear()
        return out


async def in_lobby(server: ChatServer) -> tuple[Client, Client]:
    """`ann` and `bob` in Lobby, what they were sent so far read."""
    ann, bob = Client(server), Client(server)
    await ann(op="enter", room="Lobby", user="ann")
    await bob(op="enter", room="Lobby", user="bob")
    ann.frames()
    bob.frames()
    return ann, bob
