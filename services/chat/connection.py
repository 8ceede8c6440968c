"""One client's connection: an outgoing queue drained by its own writer task, so a broadcast
never waits on a slow client, and a client that cannot keep up is dropped, not buffered forever."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

__all__ = ["Connection"]

_ids = itertools.count(1)


class Connection:
    def __init__(self, host: str, send: Callable[[str], Awaitable[None]], queue_max: int) -> None:
        self.id = next(_ids)
        self.host = host
        self.rooms: set[str] = set()
        self._send = send
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(queue_max)
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

    def close_writer(self) -> None:
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            self.overflowed.set()

    async def write_loop(self) -> None:
        while (frame := await self._queue.get()) is not None:
            await self._send(frame)
