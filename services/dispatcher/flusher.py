"""Storing where registrations stand, and the per-partition figures that follow from it.

Only feeds that moved are looked at (`active`), so an idle replica with any number of
registrations does no work here. Every `DISPATCH_FLUSH_S` the position of each feed that
answered something since is written (revision-checked, all at once); every
`DISPATCH_WATERMARK_S` each partition's watermark is computed from its active feeds alone (an
idle feed is covered up to the tail) and written if it moved, with the lag and age metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

from services.dispatcher.feed import Feed
from services.dispatcher.metrics import OLDEST, PARTITION_LAG
from services.dispatcher.positions import (
    PositionConflict,
    read_position,
    write_position,
    write_watermark,
)
from shared.bus import Bus
from shared.positions import Position, Watermark, partition_of, position_key

__all__ = ["Flusher"]

log = logging.getLogger(__name__)


class Flusher:
    def __init__(self, bus: Bus, restarted: Callable[[Feed], None]) -> None:
        self.bus = bus
        self.restarted = restarted  # told when a feed was moved back to a stored position
        self.active: dict[str, Feed] = {}  # feeds that may not be idle
        self._marks: dict[int, int] = {}  # watermark last written, per partition

    def touch(self, feed: Feed) -> None:
        self.active[feed.sub.id] = feed

    async def flush(self, feeds: Iterable[Feed] | None = None) -> None:
        """Store the position of every feed that answered something since its last store."""
        pending = list(self.active.values()) if feeds is None else feeds
        due = [feed for feed in pending if feed.delivered > feed.flushed]
        await asyncio.gather(*(self._store(feed) for feed in due))
        for sub_id, feed in list(self.active.items()):
            if feed.idle:
                del self.active[sub_id]

    def drop(self, feeds: Iterable[Feed]) -> None:
        """Stop following feeds that are no longer served here."""
        for feed in feeds:
            if self.active.get(feed.sub.id) is feed:
                del self.active[feed.sub.id]

    async def _store(self, feed: Feed) -> None:
        key = position_key(feed.sub.room, feed.sub.id)
        at = feed.delivered
        try:
            feed.position_revision = await write_position(
                self.bus, key, Position(at, feed.entry), feed.position_revision
            )
            feed.flushed = max(feed.flushed, at)
        except PositionConflict:
            await self._reread(feed, key)
        except Exception as exc:  # NATS away: stored at a later flush
            log.info("cannot store the position of %s yet: %r", feed.sub.id, exc)

    async def _reread(self, feed: Feed, key: str) -> None:
        """Someone else moved this position: another replica serves it too, for now."""
        try:
            stored = await read_position(self.bus, key)
        except Exception as exc:
            log.info("cannot read the position of %s: %r", feed.sub.id, exc)
            return
        if stored is None:
            feed.position_revision = 0
            return
        position, revision = stored
        feed.position_revision = revision
        if position.entry == feed.entry and position.seq > feed.delivered:
            log.warning("%s moved on elsewhere, to %s: following it", feed.sub.id, position.seq)
            feed.restart(position.seq)
            self.restarted(feed)

    async def mark(self, partitions: Iterable[int], tail_seq: int, entries: int) -> None:
        """Store each partition's watermark, and publish lag and age."""
        lows = dict.fromkeys(partitions, tail_seq)
        oldest = 0.0
        now = time.time()
        for feed in self.active.values():
            part = partition_of(feed.sub.room)
            if part in lows:
                lows[part] = min(lows[part], feed.covered(tail_seq))
            head = feed.head()
            if head is not None:
                oldest = max(oldest, now - head.stored_at)
        OLDEST.set(oldest)
        for part, low in lows.items():
            PARTITION_LAG.labels(str(part)).set(tail_seq - low)
            if self._marks.get(part) == low:
                continue
            try:
                await write_watermark(self.bus, part, Watermark(low, entries))
                self._marks[part] = low
            except Exception as exc:
                log.info("cannot store the watermark of partition %s: %r", part, exc)

    def forget(self, partitions: Iterable[int]) -> None:
        for part in partitions:
            self._marks.pop(part, None)
            with contextlib.suppress(KeyError):
                PARTITION_LAG.remove(str(part))
