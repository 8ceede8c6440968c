"""Following the registrations bucket (`volano_subscriptions`) with one KV watch.

The watch first delivers every current entry, then each change. After a restart of the watch
(NATS reconnected: a watch may not survive a restarted server) the entries no longer there are
reported removed. An entry that is not a registration is skipped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from services.dispatcher.metrics import UNREADABLE
from shared.bus import Bus
from shared.subscriptions import Subscription

__all__ = ["RegistrationFollower"]

log = logging.getLogger(__name__)


class RegistrationFollower:
    def __init__(
        self,
        bus: Bus,
        added: Callable[[Subscription, int], None],
        removed: Callable[[str], None],
    ) -> None:
        self.bus = bus
        self.added = added  # (registration, entry revision)
        self.removed = removed  # (id)
        self.entries_seen = 0  # every entry up to this revision has been read
        self.loaded = asyncio.Event()  # every entry has been read once
        self._known: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def restart(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._task = asyncio.create_task(self._follow(), name="registrations")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _follow(self) -> None:
        while True:
            try:
                await self._watch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("registration watch failed, restarting it: %r", exc)
                await asyncio.sleep(1)

    async def _watch(self) -> None:
        watcher = await self.bus.subscriptions.watchall()
        try:
            seen: set[str] | None = set()  # ids among the current entries; None after them
            async for entry in watcher:
                if entry is None:
                    if seen is not None:
                        for gone in self._known - seen:
                            self._gone(gone)
                        seen = None
                        self.loaded.set()
                    continue
                self.entries_seen = max(self.entries_seen, entry.revision or 0)
                if entry.operation in ("DEL", "PURGE") or not entry.value:
                    self._gone(entry.key)
                    continue
                try:
                    sub = Subscription.from_json(entry.value)
                except ValueError as exc:
                    UNREADABLE.inc()
                    log.error("skipping unreadable registration %s: %s", entry.key, exc)
                    continue
                if seen is not None:
                    seen.add(sub.id)
                self._known.add(sub.id)
                self.added(sub, entry.revision or 0)
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]

    def _gone(self, sub_id: str) -> None:
        self._known.discard(sub_id)
        self.removed(sub_id)
