"""The websocket protocol of docs/websocket.md: client frames in, server frames out, no I/O.

`parse_request` turns one text frame into a typed request or raises `ChatError` with the code the
client is told. Names are trimmed and checked here, once, at the edge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared.events import KickType, compact_json
from shared.names import has_forbidden_name_characters

__all__ = [
    "ChatError",
    "ChatRequest",
    "EnterRequest",
    "ExitRequest",
    "KickRequest",
    "Limits",
    "Request",
    "RingRequest",
    "encode",
    "error_frame",
    "parse_request",
]


class ChatError(Exception):
    """A request refused: `code` is one of docs/websocket.md's error codes."""

    def __init__(self, code: str, message: str, request_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class Limits:
    user_max: int = 20
    room_max: int = 100
    text_max: int = 400


@dataclass(frozen=True, slots=True)
class EnterRequest:
    id: Any
    room: str
    user: str
    profile: str
    token: str | None
    since: int | None = None  # a `seq` the client saw in the room: replay what came after


@dataclass(frozen=True, slots=True)
class ChatRequest:
    id: Any
    room: str
    message: str


@dataclass(frozen=True, slots=True)
class RingRequest:
    id: Any
    room: str
    to: str


@dataclass(frozen=True, slots=True)
class KickRequest:
    id: Any
    room: str
    to: str
    type: KickType


@dataclass(frozen=True, slots=True)
class ExitRequest:
    id: Any
    room: str


Request = EnterRequest | ChatRequest | RingRequest | KickRequest | ExitRequest


_KICK_TYPES: dict[str, KickType] = {"remove": "remove", "disconnect": "disconnect", "ban": "ban"}
_LABELS = {"room": "the room name", "user": "the user name", "to": "the name in `to`"}


class _Fields:
    def __init__(self, frame: dict[str, Any], request_id: Any) -> None:
        self.frame = frame
        self.id = request_id

    def text(self, key: str, *, required: bool = True) -> str | None:
        value = self.frame.get(key)
        if value is None:
            if required:
                raise ChatError("bad_request", f"missing field {key!r}", self.id)
            return None
        if not isinstance(value, str):
            raise ChatError("bad_request", f"field {key!r} must be a string", self.id)
        return value

    def name(self, key: str, max_len: int, *, required: bool = True) -> str:
        raw = self.text(key, required=required)
        if raw is None:
            return ""
        value = raw.strip()
        label = _LABELS.get(key, key)
        if not value:
            raise ChatError("bad_request", f"{label} must not be empty", self.id)
        if has_forbidden_name_characters(value):
            raise ChatError(
                "bad_request",
                f"{label} must not contain control, invisible or bidirectional-control characters",
                self.id,
            )
        if len(value) > max_len:
            raise ChatError("too_long", f"{label} is longer than {max_len} characters", self.id)
        return value

    def position(self, key: str) -> int | None:
        """An optional stream position: a non-negative integer (not a boolean)."""
        value = self.frame.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ChatError("bad_request", f"field {key!r} must be a non-negative integer", self.id)
        return value

    def body(self, key: str, max_len: int, *, required: bool = True) -> str:
        value = self.text(key, required=required) or ""
        if len(value) > max_len:
            raise ChatError("too_long", f"the {key} is longer than {max_len} characters", self.id)
        return value


def parse_request(text: str, limits: Limits) -> Request:
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        raise ChatError("bad_request", "frame is not valid JSON") from None
    if not isinstance(frame, dict):
        raise ChatError("bad_request", "frame must be a JSON object")
    request_id = frame.get("id")
    if not (
        request_id is None
        or (isinstance(request_id, (str, int)) and not isinstance(request_id, bool))
    ):
        raise ChatError("bad_request", "id must be a string or an integer")
    f = _Fields(frame, request_id)
    op = frame.get("op")
    if op == "enter":
        room = f.name("room", limits.room_max)
        token = f.text("token", required=False) or None
        # with a member token the name is the token's, so `user` may be left out
        user = f.name("user", limits.user_max, required=token is None)
        profile = f.body("profile", limits.text_max, required=False)
        return EnterRequest(request_id, room, user, profile, token, f.position("since"))
    if op == "chat":
        return ChatRequest(
            request_id, f.name("room", limits.room_max), f.body("message", limits.text_max)
        )
    if op == "ring":
        return RingRequest(
            request_id, f.name("room", limits.room_max), f.name("to", limits.user_max)
        )
    if op == "kick":
        room = f.name("room", limits.room_max)
        to = f.name("to", limits.user_max)
        kick_type = _KICK_TYPES.get(f.text("type") or "")
        if kick_type is not None:
            return KickRequest(request_id, room, to, kick_type)
        raise ChatError("bad_request", "kick type must be remove, disconnect or ban", request_id)
    if op == "exit":
        return ExitRequest(request_id, f.name("room", limits.room_max))
    if not isinstance(op, str):
        raise ChatError("bad_request", "frame needs an op", request_id)
    raise ChatError("bad_request", f"unknown op {op[:40]!r}", request_id)


def encode(frame: dict[str, Any]) -> str:
    return compact_json(frame)


def error_frame(error: ChatError) -> str:
    frame: dict[str, Any] = {"op": "error", "code": error.code, "message": error.message}
    if error.request_id is not None:
        frame["id"] = error.request_id
    return encode(frame)
