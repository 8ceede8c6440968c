"""What a stored event does on this replica: the rooms change, and this replica's clients get
their frames.

Every replica applies every event in the stream's order (services/chat/roomlog.py), so every
member sees a room's events in that order, whichever replica it is connected to. An event this
replica published is recognised by its `Nats-Msg-Id` (`pending`): its requester's connection
enters the room with it, and the requester's copy of the frame carries the request `id`. An
`enter` names the replica that holds the user and the member's role in headers, so every
replica knows where each member is and who may be kicked. A room's chats go into its `history`
(a bounded deque: one append per chat), which the next `entered` carries; a requester coming
back with `since` is first sent what it missed (services/chat/recovery.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from prometheus_client import Counter, Gauge

from services.chat.connection import Connection
from services.chat.frames import Outgoing
from services.chat.outgoing import (
    chat_frame,
    enter_frame,
    entered_frame,
    exit_frame,
    kick_frame,
    replay_frame,
    ring_frame,
    with_id,
)
from services.chat.recovery import Recovery
from services.chat.rooms import Member, Room, Rooms, Said
from services.chat.token import ROLES, Role
from shared.events import (
    EVENT_TYPES,
    ChatEvent,
    CreateEvent,
    DeleteEvent,
    EnterEvent,
    Event,
    ExitEvent,
    KickEvent,
    RingEvent,
)

__all__ = ["REPLICA_HEADER", "ROLE_HEADER", "Fold", "Pending"]

REPLICA_HEADER = "Volano-Replica"
ROLE_HEADER = "Volano-Role"

log = logging.getLogger(__name__)

EVENTS = Counter("chat_events_published_total", "Room events this replica stored", ["kind"])
ROOMS = Gauge("chat_rooms", "Rooms that exist (every replica holds them all)")
_STORED = {kind: EVENTS.labels(kind) for kind in EVENT_TYPES}


@dataclass(slots=True)
class Pending:
    """An event this replica published, until the stream hands it back."""

    conn: Connection | None = None
    request_id: Any = None
    recovery: Recovery | None = None  # an `enter` with `since`: what to replay first
    seen: asyncio.Future[int] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Fold:
    def __init__(self, rooms: Rooms, on_kicked: Callable[[list[Connection], KickEvent], None]):
        self.rooms = rooms
        self.on_kicked = on_kicked  # connections a `disconnect` or `ban` must close
        self.connections: set[Connection] = set()
        self.pending: dict[str, Pending] = {}

    def restore(self, room: str, seq: int, members: list[Member], history: list[Said]) -> None:
        self.rooms.restore(room, seq, members, history)

    def apply(self, seq: int, event: Event, headers: Mapping[str, str], at: float) -> None:
        mine = self.pending.pop(headers.get("Nats-Msg-Id", ""), None)
        try:
            self._apply(seq, event, headers, at, mine)
        finally:  # its requester is answered even if a frame could not be sent
            if mine is not None:
                _STORED[event.kind].inc()
                if not mine.seen.done():
                    mine.seen.set_result(seq)

    def _apply(
        self, seq: int, event: Event, headers: Mapping[str, str], at: float, mine: Pending | None
    ) -> None:
        conn = mine.conn if mine else None
        request_id = mine.request_id if mine else None
        room = self.rooms.get(event.room)
        if isinstance(event, ChatEvent | RingEvent):
            if room is not None and seq > room.seq:
                room.seq = seq
                if isinstance(event, ChatEvent):
                    room.history.append(Said(event.user, event.message, at, seq))
                    if room.by_conn:  # no frame is built where no member is connected
                        _to_room(room, chat_frame(event, seq), conn, request_id)
                else:
                    _ring(room, event, seq)
        elif isinstance(event, EnterEvent):
            role = headers.get(ROLE_HEADER)
            replica = headers.get(REPLICA_HEADER, "")
            before = room.seq if room is not None else 0  # the room's event before it
            if self.rooms.apply(seq, event, replica, _role(role), conn):
                self._entered(event, seq, conn, request_id, before, mine)
        elif isinstance(event, ExitEvent | KickEvent):
            if room is not None and seq > room.seq:
                self._leaving(room, event, seq, conn, request_id)
        else:
            self.rooms.apply(seq, event)
            if isinstance(event, CreateEvent | DeleteEvent):
                ROOMS.set(len(self.rooms.rooms))

    def _entered(
        self,
        event: EnterEvent,
        seq: int,
        conn: Connection | None,
        request_id: Any,
        before: int,
        mine: Pending | None,
    ) -> None:
        room = self.rooms.rooms[event.room]
        if conn is not None:
            conn.rooms.add(event.room)
            recovery = mine.recovery if mine else None
            gap = False
            if recovery is not None:
                for replayed_seq, replayed in recovery.events:
                    conn.push(Outgoing(replay_frame(replayed, replayed_seq)))
                gap = recovery.gap(before)
            text = entered_frame(event, seq, room.members.values(), room.history, gap)
            conn.push(with_id(text, request_id))
        frame = Outgoing(enter_frame(event, seq))
        for other in room.by_conn:
            if other is not conn:
                cast(Connection, other).push(frame)

    def _leaving(
        self,
        room: Room,
        event: ExitEvent | KickEvent,
        seq: int,
        conn: Connection | None,
        request_id: Any,
    ) -> None:
        """An `exit` or `kick`: the leaver still hears it, then it is applied."""
        if isinstance(event, KickEvent):
            target = room.members.get(event.to)
            _to_room(room, kick_frame(event, seq), conn, request_id)
            self.rooms.apply(seq, event)
            if target is not None:
                self._kicked(target, event)
            return
        leaver = room.members.get(event.user)
        text = exit_frame(event, seq)
        frame = Outgoing(text)
        leaving = cast(Connection | None, leaver.conn if leaver else None)
        for other in room.by_conn:
            if other is not leaving:
                cast(Connection, other).push(frame)
        if leaving is not None:
            leaving.rooms.discard(event.room)
            if not leaving.closing:
                leaving.push(with_id(text, request_id if leaving is conn else None))
        self.rooms.apply(seq, event)

    def _kicked(self, target: Member, event: KickEvent) -> None:
        local = cast(Connection | None, target.conn)
        if event.type == "remove":
            if local is not None:
                local.rooms.discard(event.room)
            return
        found = [local] if local is not None else []
        if target.type == "member":  # every connection of that member, in any room
            found += [c for c in self.connections if c is not local and c.member == target.user]
        if found:
            self.on_kicked(found, event)


def _role(value: str | None) -> Role | None:
    for role in ROLES:
        if value == role:
            return role
    return None


def _to_room(room: Room, text: str, conn: Connection | None, request_id: Any) -> None:
    """`text` to this replica's members of the room; the requester's copy carries its `id`."""
    frame = Outgoing(text)
    for member in room.by_conn:
        if member is conn and request_id is not None:
            cast(Connection, member).push(with_id(text, request_id))
        else:
            cast(Connection, member).push(frame)


def _ring(room: Room, event: RingEvent, seq: int) -> None:
    target = room.members.get(event.to)
    if target is not None and target.conn is not None:
        cast(Connection, target.conn).push(Outgoing(ring_frame(event, seq)))
