"""What a client coming back missed in a room: the room's events after its `since`
(docs/websocket.md, "Recovery"), read from the stream before its `enter` is stored.

The `enter` is stored with the room's last sequence as the expected one (services/chat/commit.py),
so once a `Recovery` holds every event of the room up to that sequence, it holds exactly the
events between `since` and the client's own `enter`; the fold sends them, then `entered`
(services/chat/fold.py). The server plans the `enter` again after every read, since the room may
have moved on meanwhile. The read is bounded: a client more than `limit` events of the room
behind gets no replay at all and `gap` (its `entered` still brings the room's history).
"""

from __future__ import annotations

from typing import Protocol

import nats.errors

from services.chat.protocol import ChatError
from services.chat.roomlog import stored_event
from shared.bus import Bus, BusHolder
from shared.events import ChatEvent, EnterEvent, Event, ExitEvent, KickEvent
from shared.subjects import EVENTS_STREAM, room_subjects

__all__ = ["READ_BATCH", "Read", "Recovery", "Replayed", "RoomReader", "StreamReader"]

READ_BATCH = 256

Replayed = ChatEvent | EnterEvent | ExitEvent | KickEvent  # what a client coming back is sent

# a stored message of a room: its sequence and its event (None: not an event, passed over)
Read = list[tuple[int, Event | None]]


class RoomReader(Protocol):
    async def room_events(self, room: str, after: int, count: int) -> tuple[Read, bool]:
        """Up to `count` of the room's stored events after sequence `after`, in order, and
        whether the stream held no more of them."""

    async def first_seq(self) -> int:
        """The sequence of the oldest event the stream still holds."""


class StreamReader:
    """`RoomReader` on the events stream: batched direct gets on the room's subjects."""

    def __init__(self, holder: BusHolder) -> None:
        self.holder = holder

    async def room_events(self, room: str, after: int, count: int) -> tuple[Read, bool]:
        bus = self._bus()
        try:
            batch, exhausted = await bus.direct.read(
                EVENTS_STREAM, room_subjects(room), after, count
            )
        except (TimeoutError, nats.errors.Error):
            raise _unavailable() from None
        return [(s.seq, stored_event(s.seq, s.data)) for s in batch], exhausted

    async def first_seq(self) -> int:
        try:
            info = await self._bus().js.stream_info(EVENTS_STREAM)
        except (TimeoutError, nats.errors.Error):
            raise _unavailable() from None
        return int(info.state.first_seq)

    def _bus(self) -> Bus:
        bus = self.holder.bus
        if bus is None:
            raise _unavailable()
        return bus


def _unavailable() -> ChatError:
    return ChatError("unavailable", "the event bus cannot be read right now; try again")


class Recovery:
    """The events of one room after `since`, gathered before the client's `enter`."""

    def __init__(self, since: int, limit: int) -> None:
        self.since = since
        self.limit = limit
        self.after = since  # every event of the room up to this sequence is in hand
        self.events: list[tuple[int, Replayed]] = []  # those to replay, in order
        self.count = 0  # events of the room read
        self.too_far = False  # more than `limit` of them: no replay
        self.first: int | None = None  # the stream's first sequence, read after the events

    def ready(self, last: int) -> bool:
        """Everything is in hand for an `enter` stored after `last`, the room's last sequence."""
        if self.too_far:
            return True
        return self.after >= last and (last <= self.since or self.first is not None)

    async def read(self, reader: RoomReader, room: str, last: int) -> None:
        """One step towards `ready(last)`: a batch of the room's events, or, once they are all
        in hand, the stream's first sequence (read after them, so that one at most `since + 1`
        means nothing after `since` was gone when they were read)."""
        if self.after < last:
            batch, exhausted = await reader.room_events(room, self.after, READ_BATCH)
            for seq, event in batch:
                if seq > last:
                    exhausted = True
                    break
                self.after = seq
                self.count += 1
                if self.count > self.limit:
                    self.too_far = True
                    self.events.clear()
                    return
                if isinstance(event, Replayed):
                    self.events.append((seq, event))
            if exhausted or not batch:
                self.after = last
        elif self.first is None:
            self.first = await reader.first_seq()

    def gap(self, last: int) -> bool:
        """The client does not get every event of the room after `since` up to `last`: too
        many, gone from the stream, or `since` is not a position this room has had."""
        if self.too_far or self.since > last:
            return True
        return self.first is not None and self.first > self.since + 1
