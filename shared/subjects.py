"""Room names to NATS subjects, injectively and safely (docs/operations.md).

A room token keeps ASCII letters, digits and `-`; every other UTF-8 byte becomes `_HH` (upper-case
hex). The mapping is injective because `_` itself is escaped, and a token can never hold `.`,
`*`, `>` or white space, so no room name reaches another room's subject.
"""

from __future__ import annotations

import string

__all__ = [
    "EVENTS_STREAM",
    "EVENT_SUBJECTS",
    "event_subject",
    "room_subjects",
    "room_token",
]

EVENTS_STREAM = "VOLANO_EVENTS"
EVENT_SUBJECTS = "volano.events.>"

_KEPT = frozenset((string.ascii_letters + string.digits + "-").encode())


def room_token(room: str) -> str:
    """The subject-safe token of a room name (surrogates are kept via `surrogatepass`)."""
    if not room:
        raise ValueError("room name must not be empty")
    data = room.encode("utf-8", "surrogatepass")
    return "".join(chr(b) if b in _KEPT else f"_{b:02X}" for b in data)


def event_subject(room: str, kind: str) -> str:
    return f"volano.events.{room_token(room)}.{kind}"


def room_subjects(room: str) -> str:
    """The filter that matches every event of one room."""
    return f"volano.events.{room_token(room)}.*"
