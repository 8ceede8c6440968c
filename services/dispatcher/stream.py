"""Reading the events stream: the tail every replica follows, and reads of one room from any
position, neither of which creates a NATS object per registration or per room.

- `Tail`: one ordered consumer per replica (ephemeral, in memory, no acks) over every event,
  from a given sequence on. nats-py re-creates it from the last sequence it saw when a gap or a
  stall shows, so it never skips an event; `restart` moves it (back) to another sequence.
- `read_room`: a batch of one room's events after a sequence, by a direct get
  (`shared/direct.py`): no consumer either.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from services.dispatcher.feed import HeldEvent
from shared.bus import Bus
from shared.codec import render
from shared.direct import DirectReader
from shared.events import from_json
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
        self._sub: object | None = None

    async def start(self, start_seq: int) -> None:
        await self.stop()
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(1, start_seq)
        )
        self._sub = await self.bus.js.subscribe(
            EVENT_SUBJECTS,
            stream=EVENTS_STREAM,
            cb=self._message,
            ordered_consumer=True,
            idle_heartbeat=2.0,
            config=config,
        )

    async def _message(self, msg: Msg) -> None:
        meta = msg.metadata
        stored_at = meta.timestamp.timestamp() if meta.timestamp else 0.0
        self.on_event(room_token_of(msg.subject), meta.sequence.stream, stored_at, msg.data)

    async def stop(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()  # type: ignore[attr-defined]


async def read_room(
    reader: DirectReader, room: str, after: int, count: int
) -> tuple[list[HeldEvent], bool]:
    """Up to `count` events of `room` after sequence `after`, in order, and whether the stream
    held no more of them when it answered."""
    found, exhausted = await reader.read(EVENTS_STREAM, room_subjects(room), after, count)
    return [held_event(m.seq, m.stored_at, m.data) for m in found], exhausted
