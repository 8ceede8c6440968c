"""The chat itself: requests in, events published, then state changed and frames fanned out.

For one room, the order clients see, the order JetStream stores and the order callbacks receive
are one order. A request that changes membership (enter, exit, kick) runs plan → publish → wait
for the ack → apply → fan-out under the room's lock, after the room's earlier events have gone
out. A chat or ring is planned and published under the lock, which is then let go; its frames
go out once JetStream acknowledged it and every event published before it in the room has gone
out, so a busy room has several messages in flight. A frame is encoded once (JSON and websocket
bytes) and the same bytes are written to every member.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge

from services.chat.bans import Bans
from services.chat.connection import Connection
from services.chat.frames import Outgoing
from services.chat.keyed_lock import KeyedLock
from services.chat.limits import HostLimits
from services.chat.protocol import (
    ChatError,
    ChatRequest,
    EnterRequest,
    ExitRequest,
    KickRequest,
    Limits,
    Request,
    RingRequest,
    encode,
    error_frame,
    parse_request,
)
from services.chat.publisher import Publisher
from services.chat.ratelimit import TokenBucket
from services.chat.rooms import Member, Room, Rooms
from services.chat.settings import ChatSettings
from services.chat.token import Identity, Role, TokenError, verify
from shared.events import (
    EVENT_TYPES,
    ChatEvent,
    CreateEvent,
    DeleteEvent,
    EnterEvent,
    Event,
    ExitEvent,
    KickEvent,
    MemberType,
    RingEvent,
)

__all__ = ["CLOSE_KICKED", "CLOSE_SHUTDOWN", "ChatServer"]

log = logging.getLogger(__name__)

REQUESTS = Counter("chat_requests_total", "Client requests by op and outcome", ["op", "outcome"])
EVENTS = Counter("chat_events_published_total", "Room events accepted by JetStream", ["kind"])
CONNECTIONS = Gauge("chat_connections", "Open websocket connections")
ROOMS = Gauge("chat_rooms", "Rooms that exist on this chat process")

EXIT_PUBLISH_GIVE_UP_S = 60.0
CLOSE_KICKED = 4001  # websocket close code after a disconnect or ban kick
CLOSE_SHUTDOWN = 1001  # "going away": the chat process is stopping

_OPS = {
    EnterRequest: "enter",
    ChatRequest: "chat",
    RingRequest: "ring",
    KickRequest: "kick",
    ExitRequest: "exit",
}


def _with_id(text: str, request_id: Any) -> Outgoing:
    """An encoded frame with the request `id` added as its last field (no second encoding of
    the body)."""
    if request_id is None:
        return Outgoing(text)
    return Outgoing(f'{text[:-1]},"id":{json.dumps(request_id)}}}')


@dataclass(slots=True)
class _Slot:
    """A published chat or ring waiting for its ack and its turn."""

    conn: Connection
    event: Event
    request_id: Any
    ack: asyncio.Future[None]  # JetStream stored it (or failed)
    done: asyncio.Future[None]  # fanned out (or failed): the requester waits for this


class ChatServer:
    def __init__(
        self,
        settings: ChatSettings,
        publisher: Publisher,
        bans: Bans,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.bans = bans
        self.clock = clock
        self.rooms = Rooms(
            settings.permanent_rooms(), settings.chat_dynamic_rooms, settings.chat_room_limit
        )
        self.limits = Limits(settings.chat_user_max, settings.chat_room_max, settings.chat_text_max)
        self.connections: set[Connection] = set()
        self.hosts = HostLimits(settings.chat_host_connections, settings.chat_host_rooms_per_minute)
        self._locks = KeyedLock()
        self._lines: dict[str, deque[_Slot]] = {}  # per room: published, not yet fanned out
        self._idle: dict[str, asyncio.Future[None]] = {}  # per room: set when its line empties
        self._ok = {op: REQUESTS.labels(op, "ok") for op in _OPS.values()}
        self._published = {kind: EVENTS.labels(kind) for kind in EVENT_TYPES}
        ROOMS.set(len(self.rooms.rooms))

    def new_bucket(self) -> TokenBucket:
        return TokenBucket(
            self.settings.chat_rate_limit, self.settings.chat_rate_burst, self.clock()
        )

    def connect(self, conn: Connection) -> None:
        self.connections.add(conn)
        CONNECTIONS.set(len(self.connections))

    async def handle(self, conn: Connection, text: str) -> None:
        """Handle one client frame; any refusal becomes an `error` frame to that client."""
        if conn.closing:
            return
        op = "invalid"
        request_id: Any = None
        allowed = conn.bucket.allow(self.clock())
        try:
            request = parse_request(text, self.limits)
            request_id = request.id
            if not allowed:
                raise self._flooded(request_id)
            op = _OPS[type(request)]
            await self._dispatch(conn, request)
            self._ok[op].inc()
        except ChatError as error:
            if not allowed and error.code != "rate_limited":  # a bad frame, and too many
                error = self._flooded(error.request_id)
            REQUESTS.labels(op, error.code).inc()
            if error.request_id is None:
                error.request_id = request_id
            conn.push(Outgoing(error_frame(error)))
        except Exception:  # a bug: the client hears of it, the connection stays up
            log.exception("unexpected error handling a %s request", op)
            REQUESTS.labels(op, "internal_error").inc()
            message = "the chat could not handle this request (an internal error, logged)"
            conn.push(Outgoing(error_frame(ChatError("bad_request", message, request_id))))

    def _flooded(self, request_id: Any) -> ChatError:
        limit = self.settings.chat_rate_limit
        return ChatError(
            "rate_limited", f"too many requests: at most {limit:g} a second; slow down", request_id
        )

    def refuse(self, conn: Connection, code: str, message: str) -> None:
        """A frame refused before parsing (binary, too large): counted against the flood limit."""
        if conn.closing:
            return
        error = ChatError(code, message)
        if not conn.bucket.allow(self.clock()):
            error = self._flooded(None)
        REQUESTS.labels("invalid", error.code).inc()
        conn.push(Outgoing(error_frame(error)))

    async def _dispatch(self, conn: Connection, request: Request) -> None:
        if isinstance(request, ChatRequest):
            await self._pipelined(
                conn, request.room, request.id, self.rooms.plan_chat, request.message
            )
        elif isinstance(request, EnterRequest):
            await self._enter(conn, request)
        elif isinstance(request, RingRequest):
            await self._pipelined(conn, request.room, request.id, self.rooms.plan_ring, request.to)
        elif isinstance(request, KickRequest):
            await self._kick(conn, request)
        else:
            async with self._locks.hold(request.room):
                await self._settle(request.room)
                events = self.rooms.plan_exit(conn, request.room)
                await self._commit(conn, events, request.id)

    async def _pipelined(
        self,
        conn: Connection,
        room: str,
        request_id: Any,
        plan: Callable[[Connection, str, str], list[Event]],
        arg: str,
    ) -> None:
        """A request that changes no membership (`chat`, `ring`): planned and written to
        JetStream under the room's lock, then the lock is let go while the acknowledgement
        travels, so the room's next request is published meanwhile. Its frames go out when its
        ack is in and every earlier event of the room has gone out (`_drain`)."""
        async with self._locks.hold(room):
            if conn.closing:  # kicked or shut down while this request waited for the room
                return
            (event,) = plan(conn, room, arg)
            ack = await self.publisher.submit(event)
            slot = _Slot(conn, event, request_id, ack, ack.get_loop().create_future())
            line = self._lines.get(room)
            if line is None:
                line = self._lines[room] = deque()
            line.append(slot)
            ack.add_done_callback(functools.partial(self._drain, room))
        await slot.done

    def _drain(self, room: str, _: object = None) -> None:
        """Apply and fan out the room's stored events, in the order they were published."""
        line = self._lines.get(room)
        while line and line[0].ack.done():
            slot = line.popleft()
            error = (
                slot.ack.exception()
                if not slot.ack.cancelled()
                else ChatError("unavailable", "the event bus did not take the event; try again")
            )
            if error is None:
                try:
                    self._apply(slot.conn, (slot.event,), slot.request_id)
                except Exception as exc:  # a bug: its requester reports it (`handle`)
                    error = exc
            if slot.done.done():
                continue
            if error is None:
                slot.done.set_result(None)
            else:
                slot.done.set_exception(error)
        if not line:
            self._lines.pop(room, None)
            idle = self._idle.pop(room, None)
            if idle is not None and not idle.done():
                idle.set_result(None)

    async def _settle(self, room: str) -> None:
        """Under the room's lock, before a membership change is planned: wait until the room's
        published chats and rings have gone out, so every frame follows the stream's order."""
        if room in self._lines:
            idle = self._idle.get(room)
            if idle is None:
                idle = self._idle[room] = asyncio.get_running_loop().create_future()
            await asyncio.shield(idle)

    def _identity(self, request: EnterRequest) -> Identity | None:
        if request.token is None:
            return None
        try:
            identity = verify(request.token, self.settings.chat_jwt_secret)
        except TokenError as exc:
            raise ChatError("not_allowed", str(exc)) from None
        if len(identity.name) > self.limits.user_max or identity.name != identity.name.strip():
            raise ChatError("not_allowed", "the member name in the token is not a valid name")
        return identity

    async def _enter(self, conn: Connection, request: EnterRequest) -> None:
        identity = self._identity(request)
        user = identity.name if identity else request.user
        member_type: MemberType = "member" if identity else "non-member"
        role: Role | None = identity.role if identity else None
        if role not in ("monitor", "admin"):  # staff are never barred by a host ban
            left = await self.bans.remaining(conn.host, identity.name if identity else None)
            if left > 0:
                minutes = math.ceil(left / 60)
                raise ChatError(
                    "banned", f"you are banned from this chat for {minutes} more minute(s)"
                )
        async with self._locks.hold(request.room):
            if conn.closing:  # kicked or shut down while this request waited for the room
                return
            await self._settle(request.room)
            events = self.rooms.plan_enter(
                conn, request.room, user, request.profile, member_type, conn.host
            )
            if isinstance(events[0], CreateEvent) and not self.hosts.create_room(
                conn.host, self.clock()
            ):
                raise ChatError(
                    "rate_limited",
                    f"too many new rooms from your address: at most "
                    f"{self.hosts.rooms_max} a minute; wait, or enter a room that exists",
                )
            await self.publisher.publish(events)
            if identity:
                conn.member = identity.name
            self._apply(conn, events, request.id, role)

    async def _kick(self, conn: Connection, request: KickRequest) -> None:
        targets: list[Connection] = []
        async with self._locks.hold(request.room):
            if conn.closing:
                return
            await self._settle(request.room)
            events = self.rooms.plan_kick(conn, request.room, request.to, request.type)
            room = self.rooms.get(request.room)
            assert room is not None
            target = room.members[request.to]
            if request.type == "ban":
                kicker = room.by_conn[conn].user
                member = target.user if target.type == "member" else None
                await self.bans.ban(target.host, member, by=kicker)
            await self.publisher.publish(events)
            if request.type != "remove":
                targets = self._connections_of(target)
                for t in targets:
                    t.closing = True  # from now on nothing they send is handled
            self._apply(conn, events, request.id)
        for t in targets:
            await self._leave_all(t, EXIT_PUBLISH_GIVE_UP_S)
            t.close_after_sending(CLOSE_KICKED, f"{request.type} by {request.room}")

    def _connections_of(self, target: Member) -> list[Connection]:
        """A member's every connection (the member name may be in several); else the one."""
        conn = target.conn
        assert isinstance(conn, Connection)
        found = [conn]
        if target.type == "member":
            found += [c for c in self.connections if c is not conn and c.member == target.user]
        return found

    async def _commit(self, conn: Connection, events: Sequence[Event], request_id: Any) -> None:
        if conn.closing:  # kicked or shut down while this request waited for the room
            return
        await self.publisher.publish(events)
        self._apply(conn, events, request_id)

    def _apply(
        self,
        conn: Connection,
        events: Sequence[Event],
        request_id: Any,
        role: Role | None = None,
    ) -> None:
        for event in events:
            self._published[event.kind].inc()
            room = self.rooms.get(event.room)
            if isinstance(event, ExitEvent | KickEvent):
                self._fan_out(conn, room, event, request_id)  # the leaver still hears it
                self.rooms.apply(conn, event, role)
            else:
                self.rooms.apply(conn, event, role)
                self._fan_out(conn, room or self.rooms.get(event.room), event, request_id)
            if isinstance(event, CreateEvent | DeleteEvent):
                ROOMS.set(len(self.rooms.rooms))

    def _fan_out(self, conn: Connection, room: Room | None, event: Event, request_id: Any) -> None:
        """Frames for one accepted event. The requester's own frame carries its request `id`."""
        if room is None:
            return
        if isinstance(event, ChatEvent):
            body: dict[str, Any] = {
                "op": "chat",
                "room": event.room,
                "user": event.user,
                "message": event.message,
            }
            self._to_room(room, conn, body, request_id)
        elif isinstance(event, EnterEvent):
            conn.rooms.add(event.room)
            members = [
                {"user": m.user, "profile": m.profile, "type": m.type}
                for m in room.members.values()
            ]
            entered = {"op": "entered", "room": event.room, "user": event.user, "members": members}
            conn.push(_with_id(encode(entered), request_id))
            frame = Outgoing(
                encode(
                    {
                        "op": "enter",
                        "room": event.room,
                        "user": event.user,
                        "profile": event.profile,
                        "type": event.type,
                    }
                )
            )
            for member in room.members.values():
                if member.conn is not conn:
                    member.conn.push(frame)  # type: ignore[attr-defined]
        elif isinstance(event, RingEvent):
            target = room.members.get(event.to)
            if target is not None:
                ring = {"op": "ring", "room": event.room, "from": event.from_}
                target.conn.push(Outgoing(encode(ring)))  # type: ignore[attr-defined]
        elif isinstance(event, KickEvent):
            body = {
                "op": "kick",
                "room": event.room,
                "from": event.from_,
                "to": event.to,
                "type": event.type,
            }
            self._to_room(room, conn, body, request_id)
            target = room.members.get(event.to)
            if event.type == "remove" and target is not None:
                target.conn.rooms.discard(event.room)  # type: ignore[attr-defined]
        elif isinstance(event, ExitEvent):
            leaver = room.members.get(event.user)
            body = {"op": "exit", "room": event.room, "user": event.user}
            if leaver is None:
                return
            leaving = leaver.conn
            assert isinstance(leaving, Connection)
            leaving.rooms.discard(event.room)
            text = encode(body)
            frame = Outgoing(text)
            for member in room.members.values():
                if member.conn is not leaving:
                    member.conn.push(frame)  # type: ignore[attr-defined]
            if leaving is conn and not leaving.closing:
                leaving.push(_with_id(text, request_id))  # the leaver's confirmation

    @staticmethod
    def _to_room(room: Room, conn: Connection, body: dict[str, Any], request_id: Any) -> None:
        """`body` to every member; the requester's copy carries its request `id`."""
        text = encode(body)
        frame = Outgoing(text)
        for member in room.members.values():
            if member.conn is conn and request_id is not None:
                conn.push(_with_id(text, request_id))
            else:
                member.conn.push(frame)  # type: ignore[attr-defined]

    async def _leave_all(self, conn: Connection, give_up_s: float) -> None:
        """`exit` (and `delete` of an emptied dynamic room) for every room `conn` is in. These
        events happen whether or not NATS is up, so they are retried until stored."""
        for room_name in sorted(conn.rooms):
            async with self._locks.hold(room_name):
                await self._settle(room_name)
                try:
                    events = self.rooms.plan_exit(conn, room_name)
                except ChatError:
                    conn.rooms.discard(room_name)
                    continue
                await self.publisher.publish_until_stored(events, give_up_s)
                self._apply(conn, events, None)

    async def disconnect(self, conn: Connection) -> None:
        """The client is gone (closed, vanished, or dropped): its `exit` events happen."""
        conn.closing = True
        await self._leave_all(conn, EXIT_PUBLISH_GIVE_UP_S)
        self.connections.discard(conn)
        CONNECTIONS.set(len(self.connections))

    async def shutdown(self, give_up_s: float) -> None:
        """SIGTERM: every user still here exits every room, then their sockets are closed."""
        conns = list(self.connections)
        for conn in conns:
            conn.closing = True
        await asyncio.gather(*(self._leave_all(c, give_up_s) for c in conns))
        for conn in conns:
            conn.close_after_sending(CLOSE_SHUTDOWN, "the chat server is shutting down")
