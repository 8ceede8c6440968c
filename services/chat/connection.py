"""One client's connection and the `Link` its frames leave by.

A frame is written to the client's socket at once (`Link.send_frame`), in the order the server
produced it, so a broadcast is one loop over the room with no task, queue or await per recipient.
A client that cannot keep up (its link refuses the frame: too many bytes not yet taken by the
peer) is dropped, never buffered forever.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Protocol

from services.chat.frames import Outgoing
from services.chat.ratelimit import TokenBucket

__all__ = ["CLOSE_TOO_SLOW", "Close", "Connection", "Link"]

CLOSE_TOO_SLOW = 1008  # policy violation: the client did not read what it was sent

_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Close:
    """A closing handshake: the code and reason sent after the last frame."""

    code: int
    reason: str


class Link(Protocol):
    """Where a connection's frames go (services/chat/wsserver.py; an ASGI fallback in app.py)."""

    def send_frame(self, frame: Outgoing) -> bool:
        """Write the frame now (or queue it in order); never waits. False, with nothing
        written, when the peer is so far behind that it must be dropped."""

    def close_after(self, code: int, reason: str) -> None:
        """Close the websocket after the frames already sent; the reader then sees a
        disconnect. Called at most once."""


class Connection:
    def __init__(self, host: str, link: Link, bucket: TokenBucket) -> None:
        self.id = next(_ids)
        self.host = host
        self.rooms: set[str] = set()
        self.bucket = bucket
        self.member: str | None = None  # member name once entered with a member token
        self.closing = False  # kicked or shutting down: no further request is handled
        self.closed = False  # the close handshake was started: nothing more is sent
        self._link = link
        self._send = link.send_frame  # bound once: called for every frame of every broadcast

    def __hash__(self) -> int:
        return self.id

    def __eq__(self, other: object) -> bool:
        return self is other

    def push(self, frame: Outgoing) -> None:
        if self.closed or self._send(frame):
            return
        self.closed = True
        self._link.close_after(CLOSE_TOO_SLOW, "client too slow")

    def close_after_sending(self, code: int, reason: str) -> None:
        """Close the websocket after what was sent so far."""
        self.closing = True
        if not self.closed:
            self.closed = True
            self._link.close_after(code, reason)
