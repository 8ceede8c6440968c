"""The frames a room event becomes for clients (docs/websocket.md), built here and nowhere else.

Each is encoded once: `Outgoing` holds the JSON text and the websocket bytes written to every
recipient. A requester's own copy carries its request `id` as the frame's last field, added to
the encoded text rather than encoded a second time. Every room frame carries `seq`, the event's
position in the stream. No I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from services.chat.frames import Outgoing
from services.chat.protocol import encode
from services.chat.rooms import Member
from shared.events import ChatEvent, EnterEvent, ExitEvent, KickEvent, RingEvent

__all__ = [
    "chat_frame",
    "enter_frame",
    "entered_frame",
    "exit_frame",
    "kick_frame",
    "ring_frame",
    "with_id",
]


def with_id(text: str, request_id: Any) -> Outgoing:
    """`text` (an encoded frame) with the request `id` added as its last field."""
    if request_id is None:
        return Outgoing(text)
    return Outgoing(f'{text[:-1]},"id":{json.dumps(request_id)}}}')


def chat_frame(event: ChatEvent, seq: int) -> str:
    return encode(
        {"op": "chat", "room": event.room, "user": event.user, "message": event.message, "seq": seq}
    )


def enter_frame(event: EnterEvent, seq: int) -> str:
    return encode(
        {
            "op": "enter",
            "room": event.room,
            "user": event.user,
            "profile": event.profile,
            "type": event.type,
            "seq": seq,
        }
    )


def entered_frame(event: EnterEvent, seq: int, members: Iterable[Member]) -> str:
    listed = [{"user": m.user, "profile": m.profile, "type": m.type} for m in members]
    return encode(
        {"op": "entered", "room": event.room, "user": event.user, "members": listed, "seq": seq}
    )


def exit_frame(event: ExitEvent, seq: int) -> str:
    return encode({"op": "exit", "room": event.room, "user": event.user, "seq": seq})


def kick_frame(event: KickEvent, seq: int) -> str:
    return encode(
        {
            "op": "kick",
            "room": event.room,
            "from": event.from_,
            "to": event.to,
            "type": event.type,
            "seq": seq,
        }
    )


def ring_frame(event: RingEvent, seq: int) -> str:
    return encode({"op": "ring", "room": event.room, "from": event.from_, "seq": seq})
