"""The chat itself: requests in, events published, then state changed and frames fanned out.

For one room, plan → publish → apply → fan-out happens under that room's lock, so the order
clients see, the order JetStream stores and the order callbacks receive are one order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Gauge

from services.chat.connection import Connection
from services.chat.keyed_lock import KeyedLock
from services.chat.protocol import (
    ChatError,
    ChatRequest,
    EnterRequest,
    ExitRequest,
    Limits,
    Request,
    encode,
    error_frame,
    parse_request,
)
from services.chat.publisher import Publisher
from services.chat.rooms import Room, Rooms
from services.chat.settings import ChatSettings
from shared.events import ChatEvent, EnterEvent, Event, ExitEvent

__all__ = ["ChatServer"]


def _reply(body: dict[str, Any], request_id: Any) -> str:
    return encode(body if request_id is None else {**body, "id": request_id})


log = logging.getLogger(__name__)

REQUESTS = Counter("chat_requests_total", "Client requests by op and outcome", ["op", "outcome"])
EVENTS = Counter("chat_events_published_total", "Room events accepted by JetStream", ["kind"])
CONNECTIONS = Gauge("chat_connections", "Open websocket connections")
ROOMS = Gauge("chat_rooms", "Rooms that exist on this chat process")

EXIT_PUBLISH_GIVE_UP_S = 60.0


class ChatServer:
    def __init__(self, settings: ChatSettings, publisher: Publisher) -> None:
        self.settings = settings
        self.publisher = publisher
        self.rooms = Rooms(
            settings.permanent_rooms(), settings.chat_dynamic_rooms, settings.chat_room_limit
        )
        self.limits = Limits(settings.chat_user_max, settings.chat_room_max, settings.chat_text_max)
        self.connections: set[Connection] = set()
        self._locks = KeyedLock()
        ROOMS.set(len(self.rooms.rooms))

    def connect(self, conn: Connection) -> None:
        self.connections.add(conn)
        CONNECTIONS.set(len(self.connections))

    async def handle(self, conn: Connection, text: str) -> None:
        """Handle one client frame; any refusal becomes an `error` frame to that client."""
        op = "invalid"
        try:
            request = parse_request(text, self.limits)
            op = type(request).__name__.removesuffix("Request").lower()
            await self._dispatch(conn, request)
            REQUESTS.labels(op, "ok").inc()
        except ChatError as error:
            REQUESTS.labels(op, error.code).inc()
            if error.request_id is None and op != "invalid":
                error.request_id = request.id
            conn.push(error_frame(error))

    async def _dispatch(self, conn: Connection, request: Request) -> None:
        if isinstance(request, EnterRequest):
            await self._enter(conn, request)
        elif isinstance(request, ChatRequest):
            async with self._locks.hold(request.room):
                events = self.rooms.plan_chat(conn, request.room, request.message)
                await self._commit(conn, events, request.id)
        elif isinstance(request, ExitRequest):
            async with self._locks.hold(request.room):
                events = self.rooms.plan_exit(conn, request.room)
                await self._commit(conn, events, request.id)
        else:
            raise ChatError("bad_request", f"op {type(request).__name__} is not supported yet")

    async def _enter(self, conn: Connection, request: EnterRequest) -> None:
        async with self._locks.hold(request.room):
            events = self.rooms.plan_enter(
                conn, request.room, request.user, request.profile, "non-member", conn.host
            )
            await self._commit(conn, events, request.id)

    async def _commit(self, conn: Connection, events: Sequence[Event], request_id: Any) -> None:
        await self.publisher.publish(events)
        self._apply(conn, events, request_id)

    def _apply(self, conn: Connection, events: Sequence[Event], request_id: Any) -> None:
        for event in events:
            EVENTS.labels(event.kind).inc()
            room = self.rooms.get(event.room)
            self.rooms.apply(conn, event)
            self._fan_out(conn, room or self.rooms.get(event.room), event, request_id)
        ROOMS.set(len(self.rooms.rooms))

    def _fan_out(self, conn: Connection, room: Room | None, event: Event, request_id: Any) -> None:
        """Frames for one accepted event. The requester's own frame carries its request `id`."""
        if room is None:
            return
        if isinstance(event, EnterEvent):
            conn.rooms.add(event.room)
            members = [
                {"user": m.user, "profile": m.profile, "type": m.type}
                for m in room.members.values()
            ]
            conn.push(
                _reply(
                    {"op": "entered", "room": event.room, "user": event.user, "members": members},
                    request_id,
                )
            )
            frame = encode(
                {
                    "op": "enter",
                    "room": event.room,
                    "user": event.user,
                    "profile": event.profile,
                    "type": event.type,
                }
            )
            self._send_to_room(room, frame, skip=conn)
        elif isinstance(event, ChatEvent):
            body = {"op": "chat", "room": event.room, "user": event.user, "message": event.message}
            self._send_to_room(room, encode(body), skip=conn)
            conn.push(_reply(body, request_id))
        elif isinstance(event, ExitEvent):
            body = {"op": "exit", "room": event.room, "user": event.user}
            self._send_to_room(room, encode(body), skip=conn)
            conn.rooms.discard(event.room)
            conn.push(_reply(body, request_id))

    @staticmethod
    def _send_to_room(room: Room, frame: str, skip: Connection | None = None) -> None:
        for member in room.members.values():
            if member.conn is not skip:
                member.conn.push(frame)  # type: ignore[attr-defined]

    async def disconnect(self, conn: Connection) -> None:
        """The client is gone: its `exit` events happen even if NATS is down for a while."""
        self.connections.discard(conn)
        CONNECTIONS.set(len(self.connections))
        for room_name in sorted(conn.rooms):
            async with self._locks.hold(room_name):
                try:
                    events = self.rooms.plan_exit(conn, room_name)
                except ChatError:
                    continue
                await self.publisher.publish_until_stored(events, EXIT_PUBLISH_GIVE_UP_S)
                self._apply(conn, events, None)
