"""Reading the events stream: the tail every replica follows, and reads of one room from any
position, neither of which creates a NATS object per registration or per room.

- `Tail`: one ordered consumer per replica (`shared/ordered.py`: ephemeral, in memory, no
  acks, handled in nats-py's read loop) over every event, from a given sequence on. It is made
  again from the last sequence seen when a gap, a heartbeat that says more was sent, or
  silence (its node died) shows, so it never skips an event; `start` moves it (back) to
  another sequence.
- `read_room`: a batch of one room's events after a sequence, by a direct get
  (`shared/direct.py`): no consumer either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from services.dispatcher.feed import HeldEvent
from shared.bus import Bus
from shared.codec import render
from shared.direct import DirectReader
from shared.events import from_json
from shared.ordered import OrderedTail
from shared.subjects import EVENT_SUBJECTS, EVENTS_STREAM, room_subjects

__all__ = ["Tail", "held_event", "read_room", "room_token_of"]

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 5.0


def held_event(seq: int, stored_at: float, data: bytes) -> HeldEvent:
    """An event as the stream holds it, rendered to XML; an event that is not one (never
    published by the chat) is held with no body, so it is passed over, never POSTed."""
    try:
        body: bytes | None = render(from_json(data)).encode()
    except ValueError as exc:
        log.error("passing over malformed event %s: %s", seq, exc)
        body = None
    return HeldEvent(seq, stored_at, body)


def room_token_of(subject: str) -> str:
    """`volano.events.<room-token>.<kind>` -> `<room-token>`."""
    return subject.split(".", 3)[2]


class Tail:
    """Calls `on_event(room_token, seq, stored_at, data)` for every event from `start` on."""

    def __init__(self, bus: Bus, on_event: Callable[[str, int, float, bytes], None]) -> None:
        self.bus = bus
        self.on_event = on_event
        self._tail: OrderedTail | None = None

    async def start(self, start_seq: int) -> None:
        await self.stop()
        self._tail = OrderedTail(
            self.bus.nc, self.bus.js, EVENTS_STREAM, EVENT_SUBJECTS, self._message
        )
        await self._tail.start(max(1, start_seq))

    def _message(
        self, seq: int, stored_at: float, subject: str, data: bytes, _: dict[str, str]
    ) -> None:
        self.on_event(room_token_of(subject), seq, stored_at, data)

    async def stop(self) -> None:
        tail, self._tail = self._tail, None
        if tail is not None:
            await tail.stop()


async def read_room(
    reader: DirectReader, room: str, after: int, count: int
) -> tuple[list[HeldEvent], bool]:
    """Up to `count` events of `room` after sequence `after`, in order, and whether the stream
    held no more of them when it answered."""
    found, exhausted = await reader.read(EVENTS_STREAM, room_subjects(room), after, count)
    return [held_event(m.seq, m.stored_at, m.data) for m in found], exhausted
