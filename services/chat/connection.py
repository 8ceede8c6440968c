"""One client's connection: an outgoing queue drained by its own writer task, so a broadcast
never waits on a slow client, and a client that cannot keep up is dropped, not buffered forever."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.chat.ratelimit import TokenBucket

__all__ = ["Close", "Connection"]

_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Close:
    """Queued after the last frame: close the websocket with this code and reason."""

    code: int
    reason: str


class Connection:
    def __init__(
        self,
        host: str,
        send: Callable[[str], Awaitable[None]],
        queue_max: int,
        bucket: TokenBucket,
        close: Callable[[int, str], Awaitable[None]] | None = None,
    ) -> None:
        self.id = next(_ids)
        self.host = host
        self.rooms: set[str] = set()
        self.bucket = bucket
        self.member: str | None = None  # member name once entered with a member token
        self.closing = False  # kicked or shutting down: no further request is handled
        self._send = send
        self._close = close
        self._queue: asyncio.Queue[str | Close | None] = asyncio.Queue(queue_max)
        self.overflowed = asyncio.Event()

    def __hash__(self) -> int:
        return self.id

    def __eq__(self, other: object) -> bool:
        return self is other

    def push(self, frame: str) -> None:
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed.set()

    def close_after_sending(self, code: int, reason: str) -> None:
        """Send what is queued, then close the websocket."""
        self.closing = True
        try:
            self._queue.put_nowait(Close(code, reason))
        except asyncio.QueueFull:
            self.overflowed.set()

    def close_writer(self) -> None:
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            self.overflowed.set()

    async def write_loop(self) -> None:
        while (frame := await self._queue.get()) is not None:
            if isinstance(frame, Close):
                if self._close is not None:
                    await self._close(frame.code, frame.reason)
                return
            await self._send(frame)
