"""The chat's requests, as steps: check, plan, store, and let the stream tell everyone.

No frame about a room event is sent from here: every replica sends its clients the frames of
the events it reads from the stream (services/chat/fold.py), so a room looks the same on every
replica. A request that changes membership (enter, exit, kick) is planned against the rooms
and stored with the room's expected last sequence under the room's local lock, planned again
whenever another replica got there first (services/chat/commit.py); its requester is answered
once the stream has handed the event back. A chat or ring changes no membership: it is
published without an expected sequence and without the lock, so a room's chats are in flight
together, and its sender is answered by the sender's own copy from the stream. An `enter` with
`since` first reads what the client missed in the room (services/chat/recovery.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge

from services.chat.bans import Bans
from services.chat.commit import Committer, FateUnknown
from services.chat.connection import Connection
from services.chat.fold import REPLICA_HEADER, ROLE_HEADER, Fold, Pending
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
    error_frame,
    parse_request,
)
from services.chat.publisher import Publisher
from services.chat.ratelimit import TokenBucket
from services.chat.recovery import Recovery, RoomReader
from services.chat.replicas import Replicas
from services.chat.roomlog import RoomLog
from services.chat.rooms import Member, Rooms
from services.chat.settings import ChatSettings
from services.chat.snapshots import Snapshots
from services.chat.token import member_identity
from shared.events import ChatEvent, CreateEvent, EnterEvent, Event, KickEvent, RingEvent

__all__ = ["CLOSE_FENCED", "CLOSE_KICKED", "CLOSE_SHUTDOWN", "ChatServer"]

log = logging.getLogger(__name__)

REQUESTS = Counter("chat_requests_total", "Client requests by op and outcome", ["op", "outcome"])
CONNECTIONS = Gauge("chat_connections", "Open websocket connections")

CLOSE_KICKED = 4001  # websocket close code after a disconnect or ban kick
CLOSE_SHUTDOWN = 1001  # "going away": the chat process is stopping
CLOSE_FENCED = 1012  # "service restart": cut off from NATS too long; reconnect elsewhere

_OPS = {
    EnterRequest: "enter",
    ChatRequest: "chat",
    RingRequest: "ring",
    KickRequest: "kick",
    ExitRequest: "exit",
}


class ChatServer:
    def __init__(
        self,
        settings: ChatSettings,
        publisher: Publisher,
        bans: Bans,
        replicas: Replicas,
        reader: RoomReader,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.reader = reader
        self.bans = bans
        self.replicas = replicas
        self.clock = clock
        self.limits = Limits(settings.chat_user_max, settings.chat_room_max, settings.chat_text_max)
        self.hosts = HostLimits(settings.chat_host_connections, settings.chat_host_rooms_per_minute)
        self.snapshots = Snapshots(settings.nats_replicas)
        self.fold = Fold(self.new_rooms(), self._kicked)
        self.roomlog = RoomLog(self.snapshots, self.fold.apply, self.fold.restore)
        self.committer = Committer(publisher, self.roomlog, self.fold)
        self.serving = False  # the rooms are read and this replica's heartbeat is current
        self.locks = KeyedLock()
        self._ok = {op: REQUESTS.labels(op, "ok") for op in _OPS.values()}
        self.changed: set[str] = set()  # rooms whose snapshot this replica is to save

    def new_rooms(self) -> Rooms:
        s = self.settings
        return Rooms(s.permanent_rooms(), s.chat_dynamic_rooms, s.chat_room_limit, s.chat_history)

    @property
    def rooms(self) -> Rooms:
        return self.fold.rooms

    @property
    def connections(self) -> set[Connection]:
        return self.fold.connections

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
        except FateUnknown:  # no answer can be true: the client reconnects and sees (`since`)
            REQUESTS.labels(op, "fate_unknown").inc()
            conn.close_after_sending(CLOSE_FENCED, "lost touch with the event bus; reconnect")
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
        if not self.serving:
            raise ChatError("unavailable", "this chat server is reconnecting; try again")
        if isinstance(request, ChatRequest):
            user = self.rooms.member_of(conn, request.room).user
            await self._say(conn, ChatEvent(request.room, user, request.message), request.id)
        elif isinstance(request, RingRequest):
            user = self.rooms.check_ring(conn, request.room, request.to).user
            await self._say(conn, RingEvent(request.room, user, request.to), request.id)
        elif isinstance(request, EnterRequest):
            await self._enter(conn, request)
        elif isinstance(request, KickRequest):
            await self._kick(conn, request)
        else:
            async with self.locks.hold(request.room):
                member = self.rooms.member_of(conn, request.room)
                await self.leave(request.room, member, Pending(conn, request.id))

    async def _say(self, conn: Connection, event: ChatEvent | RingEvent, request_id: Any) -> None:
        """A chat or ring: published at once, without the room's lock or expected sequence;
        its sender is answered by the stream. Once sent, it is sent again until stored (never
        `unavailable` for a message the room then sees)."""
        pending = Pending(conn, request_id)
        alive = self._serving_conn(conn)
        await self.committer.store(event, pending, must=False, alive=alive, checked=False)

    def _serving_conn(self, conn: Connection) -> Callable[[], bool]:
        return lambda: not conn.closing and not self.replicas.fenced

    async def _enter(self, conn: Connection, request: EnterRequest) -> None:
        secret, name_max = self.settings.chat_jwt_secret, self.limits.user_max
        identity = member_identity(request.token, secret, name_max)
        user = identity.name if identity else request.user
        role = identity.role if identity else None
        await self.bans.admit(conn.host, identity.name if identity else None, role)
        headers = ((REPLICA_HEADER, self.replicas.me),) + (((ROLE_HEADER, role),) if role else ())
        counted = False
        recovery = None
        if request.since is not None:
            recovery = Recovery(request.since, self.settings.chat_replay_max)
        async with self.locks.hold(request.room):
            while not conn.closing:
                event = self.rooms.plan_enter(
                    conn,
                    request.room,
                    user,
                    request.profile,
                    "member" if identity else "non-member",
                    conn.host,
                )
                last = self.rooms.seq_of(request.room)
                if isinstance(event, EnterEvent) and recovery and not recovery.ready(last):
                    await recovery.read(self.reader, request.room, last)
                    continue  # plan again: the room may have moved on meanwhile
                if isinstance(event, CreateEvent) and not counted:
                    counted = True
                    if not self.hosts.create_room(conn.host, self.clock()):
                        raise ChatError(
                            "rate_limited",
                            f"too many new rooms from your address: at most "
                            f"{self.hosts.rooms_max} a minute; wait, or enter a room that exists",
                        )
                if isinstance(event, EnterEvent):
                    pending = Pending(conn, request.id, recovery)
                    if identity:
                        conn.member = identity.name
                    if await self._store(event, pending, self._serving_conn(conn), headers):
                        return
                else:
                    await self._store(event, Pending(), self._serving_conn(conn))

    async def _kick(self, conn: Connection, request: KickRequest) -> None:
        async with self.locks.hold(request.room):
            banned = False
            while True:
                event = self.rooms.plan_kick(conn, request.room, request.to, request.type)
                target = self.rooms.rooms[request.room].members[request.to]
                if request.type == "ban" and not banned:
                    banned = True
                    kicker = self.rooms.member_of(conn, request.room).user
                    member = target.user if target.type == "member" else None
                    await self.bans.ban(target.host, member, by=kicker)
                if await self._store(event, Pending(conn, request.id), self._serving_conn(conn)):
                    break
            if request.type != "remove":
                await self.leave(request.room, target)

    async def _store(
        self,
        event: Event,
        pending: Pending,
        alive: Callable[[], bool],
        headers: tuple[tuple[str, str], ...] = (),
        *,
        must: bool = False,
    ) -> bool:
        """Store one membership event; False if the room moved on first (plan again)."""
        seq = await self.committer.store(event, pending, must=must, alive=alive, extra=headers)
        if seq is None:
            return False
        self.changed.add(event.room)
        return True

    async def leave(self, room: str, member: Member, pending: Pending | None = None) -> None:
        """`member` leaves `room` (its `exit`, then the room's `delete` if that emptied it),
        stored however long NATS is away, unless this replica is fenced meanwhile (then the
        survivors do it). Called under the room's lock."""
        while (event := self.rooms.plan_leave(room, member)) is not None:
            this = pending if pending is not None and event.kind == "exit" else Pending()
            await self._store(event, this, self._may_publish, must=True)

    def _may_publish(self) -> bool:
        return not self.replicas.fenced

    def _kicked(self, conns: list[Connection], event: KickEvent) -> None:
        """A `disconnect` or `ban` read from the stream: the target's connections here close
        (each leaves its other rooms as it goes)."""
        for conn in conns:
            conn.closing = True
            conn.close_after_sending(CLOSE_KICKED, f"{event.type} by {event.room}")

    async def leave_all(self, conn: Connection) -> None:
        """`exit` (and `delete` of an emptied dynamic room) for every room `conn` is in."""
        for room_name in sorted(conn.rooms):
            async with self.locks.hold(room_name):
                room = self.rooms.get(room_name)
                member = room.by_conn.get(conn) if room else None
                if member is None:
                    conn.rooms.discard(room_name)
                    continue
                try:
                    await self.leave(room_name, member)
                except (ChatError, FateUnknown):  # fenced: the survivors make it leave
                    return

    async def disconnect(self, conn: Connection) -> None:
        """The client is gone (closed, vanished, dropped or kicked): its `exit` events happen."""
        conn.closing = True
        await self.leave_all(conn)
        self.connections.discard(conn)
        CONNECTIONS.set(len(self.connections))
