"""The frames a room event becomes for clients (docs/websocket.md), built here and nowhere else.

Each is encoded once: `Outgoing` holds the JSON text and the websocket bytes written to every
recipient. A requester's own copy carries its request `id` as the frame's last field, added to
the encoded text rather than encoded a second time. Every room frame carries `seq`, the event's
position in the stream; a frame replayed to a client coming back also carries `"replay": true`.
No I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from services.chat.frames import Outgoing
from services.chat.protocol import encode
from services.chat.rooms import Member, Said
from shared.events import ChatEvent, EnterEvent, ExitEvent, KickEvent, RingEvent
from shared.since import rfc3339

__all__ = [
    "chat_frame",
    "enter_frame",
    "entered_frame",
    "exit_frame",
    "kick_frame",
    "replay_frame",
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


def entered_frame(
    event: EnterEvent,
    seq: int,
    members: Iterable[Member],
    history: Iterable[Said] = (),
    gap: bool = False,
) -> str:
    """The entrant's `entered`. Each message of the history is encoded once, the first time
    an `entered` lists it, and kept with it: an `entered` with a full history costs a join."""
    listed = [{"user": m.user, "profile": m.profile, "type": m.type} for m in members]
    head = encode({"op": "entered", "room": event.room, "user": event.user, "members": listed})
    said = ",".join(s.encoded or _encode_said(s) for s in history)
    tail = ',"gap":true}' if gap else "}"
    return f'{head[:-1]},"history":[{said}],"seq":{seq}{tail}'


def _encode_said(said: Said) -> str:
    said.encoded = encode(
        {"user": said.user, "message": said.message, "at": rfc3339(said.at, 6), "seq": said.seq}
    )
    return said.encoded


def replay_frame(event: ChatEvent | EnterEvent | ExitEvent | KickEvent, seq: int) -> str:
    """The frame of an event replayed to a client coming back."""
    if isinstance(event, ChatEvent):
        text = chat_frame(event, seq)
    elif isinstance(event, EnterEvent):
        text = enter_frame(event, seq)
    elif isinstance(event, ExitEvent):
        text = exit_frame(event, seq)
    else:
        text = kick_frame(event, seq)
    return text[:-1] + ',"replay":true}'


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
