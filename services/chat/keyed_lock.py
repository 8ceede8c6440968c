"""One asyncio lock per key, held only while someone uses it (room names are unbounded)."""

from __future__ import annotations

import asyncio
from types import TracebackType

__all__ = ["KeyedLock"]


class KeyedLock:
    def __init__(self) -> None:
        self._locks: dict[str, _Held] = {}

    def hold(self, key: str) -> _Held:
        """`async with locks.hold(key):` (a plain context manager: this is on every request)."""
        held = self._locks.get(key)
        if held is None:
            held = self._locks[key] = _Held(self, key)
        return held

    def __len__(self) -> int:
        return len(self._locks)


class _Held:
    __slots__ = ("_key", "_lock", "_owner", "_users")

    def __init__(self, owner: KeyedLock, key: str) -> None:
        self._owner = owner
        self._key = key
        self._lock = asyncio.Lock()
        self._users = 0  # holding or waiting

    async def __aenter__(self) -> None:
        self._users += 1
        try:
            await self._lock.acquire()
        except BaseException:
            self._leave()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()
        self._leave()

    def _leave(self) -> None:
        self._users -= 1
        if self._users == 0:
            del self._owner._locks[self._key]
