"""Reading the events stream: the tail every replica follows, and reads of one room from any
position, neither of which creates a NATS object per registration or per room.

- `Tail`: one ordered consumer per replica (ephemeral, in memory, no acks) over every event,
  from a given sequence on. nats-py re-creates it from the last sequence it saw when a gap or a
  stall shows, so it never skips an event; `restart` moves it (back) to another sequence.
- `DirectReader`: a batch of a stream's messages on some subjects after a sequence, by a direct
  get (JetStream answers it from the stream itself, any replica of it, with no consumer): one
  request, the messages, then an end-of-batch status that says how many more there are. The
  feeds read their room's events this way, and a replica taking a partition over its positions.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from services.dispatcher.feed import HeldEvent
from shared.bus import Bus
from shared.codec import render
from shared.events import from_json
from shared.subjects import EVENT_SUBJECTS, EVENTS_STREAM, room_subjects

__all__ = ["DirectReader", "Stored", "Tail", "held_event", "room_token_of"]

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


def _parse_headers(raw: bytes) -> tuple[str, dict[str, str]]:
    """(status, headers) of a raw header block: `NATS/1.0 204 EOB\\r\\nK: V\\r\\n...`."""
    lines = raw.decode("utf-8", "replace").split("\r\n")
    status = lines[0][len("NATS/1.0") :].strip().split(" ", 1)[0] if lines else ""
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip()] = value.strip()
    return status, headers


def _stored_at(stamp: str) -> float:
    """RFC 3339 with nanoseconds, as JetStream writes it, to unix seconds."""
    head, _, rest = stamp.partition(".")
    fraction = rest.rstrip("Z")[:6]
    moment = datetime.fromisoformat(f"{head}.{fraction or '0'}+00:00")
    return moment.timestamp()


@dataclass(frozen=True, slots=True)
class Stored:
    """One message as a direct get returns it."""

    seq: int
    stored_at: float
    subject: str
    data: bytes


class _Batch:
    def __init__(self) -> None:
        self.messages: list[Stored] = []
        self.pending = -1  # events of the room after this batch; -1 until the end is known
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class DirectReader:
    """Batched direct gets, answered on one wildcard inbox."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._prefix = bus.nc.new_inbox()
        self._ids = itertools.count(1)
        self._batches: dict[str, _Batch] = {}
        self._ready: asyncio.Future[None] | None = None

    async def _subscribe(self) -> None:
        sub = await self.bus.nc.subscribe(self._prefix + ".*")
        self.bus.nc.handle_inline(sub._id, self._reply)

    def _reply(self, subject: bytes, data: bytes, raw_headers: bytes) -> None:
        batch = self._batches.get(subject.decode().rsplit(".", 1)[1])
        if batch is None or batch.done.done():
            return
        status, headers = _parse_headers(raw_headers) if raw_headers else ("", {})
        if status == "404":  # nothing after that sequence
            batch.pending = 0
            batch.done.set_result(None)
        elif status:  # 204 end of batch, or an error status
            batch.pending = int(headers.get("Nats-Num-Pending", "-1") or -1)
            if status != "204":
                log.warning("direct get answered %s %s", status, headers)
            batch.done.set_result(None)
        else:
            seq = int(headers["Nats-Sequence"])
            stored_at = _stored_at(headers.get("Nats-Time-Stamp", "1970-01-01T00:00:00Z"))
            batch.messages.append(Stored(seq, stored_at, headers.get("Nats-Subject", ""), data))

    async def read_room(self, room: str, after: int, count: int) -> tuple[list[HeldEvent], bool]:
        """Up to `count` events of `room` after sequence `after`, in order, and whether the
        stream held no more of them when it answered."""
        found, exhausted = await self.read(EVENTS_STREAM, room_subjects(room), after, count)
        return [held_event(m.seq, m.stored_at, m.data) for m in found], exhausted

    async def read(
        self, stream: str, subjects: str, after: int, count: int
    ) -> tuple[list[Stored], bool]:
        """Up to `count` messages of `stream` on `subjects` after sequence `after`, in order,
        and whether it held no more of them when it answered. Raises TimeoutError if NATS is
        away."""
        if self._ready is None or (self._ready.done() and self._ready.exception()):
            self._ready = asyncio.ensure_future(self._subscribe())
        await self._ready
        token = str(next(self._ids))
        batch = _Batch()
        self._batches[token] = batch
        request = {"seq": after + 1, "next_by_subj": subjects, "batch": count}
        try:
            await self.bus.nc.publish(
                f"$JS.API.DIRECT.GET.{stream}",
                json.dumps(request).encode(),
                reply=f"{self._prefix}.{token}",
            )
            async with asyncio.timeout(READ_TIMEOUT_S):
                await batch.done
        finally:
            del self._batches[token]
        if batch.pending < 0:
            raise TimeoutError("direct get ended without saying what is left")
        return batch.messages, batch.pending == 0
