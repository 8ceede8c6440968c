"""Reading the events stream into the rooms: every event of every room, in the stream's order.

`start` restores the rooms from their snapshots (services/chat/snapshots.py), reads each room's
events after its snapshot up to the stream's last sequence (direct gets, no consumer), and from
the next sequence on follows the stream with one ordered consumer (`shared/ordered.py`:
handled in nats-py's read loop, made again from the last sequence seen after a gap or a lost
consumer). Events that arrive while the rooms are being read wait in order, and each goes to
`apply` once.
`reach(seq)` waits until the event at `seq` (or a later one) has been applied. Each event goes
with the time the stream stored it (a room's `history` shows it).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable, Mapping

from services.chat.rooms import Member, Said
from services.chat.snapshots import Snapshots
from shared.bus import Bus
from shared.events import Event, from_json
from shared.ordered import OrderedTail
from shared.subjects import EVENT_SUBJECTS, EVENTS_STREAM, room_subjects

__all__ = ["Apply", "RoomLog", "stored_event"]

log = logging.getLogger(__name__)

READ_BATCH = 256

# (sequence, event, its message headers, unix time stored) of one stored event
Apply = Callable[[int, Event, Mapping[str, str], float], None]
Restore = Callable[[str, int, list[Member], list[Said]], None]


class RoomLog:
    def __init__(self, snapshots: Snapshots, apply: Apply, restore: Restore) -> None:
        self.snapshots = snapshots
        self.apply = apply
        self.restore = restore
        self.position = 0  # the last sequence applied
        self._held: list[tuple[int, Event, Mapping[str, str], float]] | None = None
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._tail: OrderedTail | None = None
        self._bus: Bus | None = None

    async def start(self, bus: Bus) -> None:
        """Rooms from the snapshots and the stream, then the live events."""
        await self.stop()
        self._bus = bus
        last = await self.stream_last()
        self._held = []
        self._tail = OrderedTail(bus.nc, bus.js, EVENTS_STREAM, EVENT_SUBJECTS, self._message)
        await self._tail.start(last + 1)
        for name, seq, members, history in await self.snapshots.load(bus):
            self.restore(name, seq, members, history)
            if seq < last:
                await self._catch_up(bus, name, seq, last)
        held, self._held = self._held, None
        self._advance(last)
        for seq, event, headers, at in held:
            self.deliver(seq, event, headers, at)

    async def _catch_up(self, bus: Bus, room: str, after: int, last: int) -> None:
        while after < last:
            batch, exhausted = await bus.direct.read(
                EVENTS_STREAM, room_subjects(room), after, READ_BATCH
            )
            for stored in batch:
                if stored.seq > last:
                    return
                after = stored.seq
                event = stored_event(stored.seq, stored.data)
                if event is not None:
                    self.apply(stored.seq, event, stored.headers, stored.stored_at)
            if exhausted or not batch:
                return

    def _message(
        self, seq: int, at: float, _subject: str, data: bytes, headers: dict[str, str]
    ) -> None:
        event = stored_event(seq, data)
        if event is None:
            self._advance(seq)
            return
        if self._held is not None:
            self._held.append((seq, event, headers, at))
        else:
            self.deliver(seq, event, headers, at)

    def deliver(self, seq: int, event: Event, headers: Mapping[str, str], at: float) -> None:
        """One stored event, the next in the stream's order, to `apply`."""
        try:
            self.apply(seq, event, headers, at)
        except Exception:  # a bug: the rooms go on with the next event
            log.exception("could not apply event %s", seq)
        self._advance(seq)

    def _advance(self, seq: int) -> None:
        self.position = max(self.position, seq)
        waiting = self._waiting
        while waiting and waiting[0][0] <= self.position:
            future = heapq.heappop(waiting)[2]
            if not future.done():
                future.set_result(None)

    async def stream_last(self) -> int:
        """The stream's last sequence now (every room's last event is at or before it)."""
        assert self._bus is not None, "the room log has not started"
        return int((await self._bus.js.stream_info(EVENTS_STREAM)).state.last_seq)

    async def reach(self, seq: int) -> None:
        if seq <= self.position:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (seq, next(self._order), future))
        await future

    async def stop(self) -> None:
        tail, self._tail = self._tail, None
        if tail is not None:
            await tail.stop()
        self.position = 0


def stored_event(seq: int, data: bytes) -> Event | None:
    """The event a stored message holds; None (logged) for one that is not an event."""
    try:
        return from_json(data)
    except ValueError as exc:
        log.error("passing over malformed event %s: %s", seq, exc)
        return None
