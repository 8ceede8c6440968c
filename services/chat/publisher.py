"""Putting accepted events onto JetStream (docs/operations.md).

A publish is a core NATS message with a reply subject in this process's own inbox; JetStream's
acknowledgement (PubAck) comes back there and resolves the publish's future with the stored
sequence. So a publish is written without waiting for the one before it to be acknowledged (a
room's chats are in flight together). A publish may carry the sequence the room's last event is
expected to have (`Nats-Expected-Last-Subject-Sequence` over the room's subjects): JetStream then
stores it only if no other event of the room came in between, and otherwise answers with the
room's actual last sequence, which fails the future with `Conflict` (services/chat/commit.py).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import re
import secrets
from dataclasses import fields

from services.chat.protocol import ChatError
from shared.bus import BusHolder
from shared.events import EVENT_TYPES, Event, compact_json, field_name
from shared.natsclient import Client, header_block
from shared.subjects import event_subject, room_subjects

__all__ = ["Conflict", "Publisher", "payload"]

log = logging.getLogger(__name__)

_subject = functools.lru_cache(maxsize=4096)(event_subject)  # a room's subjects, computed once
_filter = functools.lru_cache(maxsize=4096)(room_subjects)

# message ids: a random prefix per process and a counter (no system call per event, unlike uuid4)
_PREFIX = secrets.token_hex(8) + "-"
_counter = itertools.count(1)

# per event class: (wire name, attribute) of each field, in XML child order
_FIELDS = {cls: [(field_name(f.name), f.name) for f in fields(cls)] for cls in EVENT_TYPES.values()}


def payload(event: Event) -> bytes:
    """The event as JSON, byte for byte `shared.events.to_json` without its `asdict` copy."""
    data = {"kind": event.kind}
    for wire, attr in _FIELDS[type(event)]:
        data[wire] = getattr(event, attr)
    return compact_json(data).encode("ascii")


def _unavailable() -> ChatError:
    return ChatError("unavailable", "the event bus did not take the event; try again")


class Conflict(Exception):
    """JetStream refused an event because the room's last event is not the expected one: it
    is at `last_seq`, or 0 when JetStream did not say (a clustered stream does not)."""

    def __init__(self, last_seq: int) -> None:
        super().__init__(f"the room's last event is {last_seq or 'another'}")
        self.last_seq = last_seq


_WRONG_LAST = re.compile(
    rb'"err_code":(?:10071|10164),"description":"wrong last sequence:? ?(\d*)"'
)
_SEQ = re.compile(rb'"seq":(\d+)')


class _Acks:
    """PubAcks for one NATS connection: `<inbox>.<n>` → the future of publish n, resolved in
    nats-py's read loop as the ack is parsed (`Client.handle_inline`)."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        # looked up once: on Python 3.11 every `get_running_loop()` is a getpid() system call
        self.loop = asyncio.get_running_loop()
        self.inbox = nc.new_inbox()
        self.cut = len(self.inbox) + 1
        # publish number → its future and the timer that fails it if no ack comes
        self.waiting: dict[int, tuple[asyncio.Future[int], asyncio.TimerHandle]] = {}

    async def start(self) -> None:
        sub = await self.nc.subscribe(self.inbox + ".*")
        self.nc.handle_inline(sub._id, self._on_ack)

    def _on_ack(self, subject: bytes, _reply: bytes, data: bytes, headers: bytes) -> None:
        try:
            entry = self.waiting.pop(int(subject[self.cut :]), None)
        except ValueError:
            return
        if entry is None:
            return
        future, timer = entry
        timer.cancel()
        if future.done():
            return
        if headers:  # a status such as 503: no stream for the subject
            log.warning("JetStream answered an event with %r", headers.split(b"\r\n", 1)[0])
            future.set_exception(_unavailable())
        elif b'"error"' in data:
            wrong = _WRONG_LAST.search(data)
            if wrong is not None:
                future.set_exception(Conflict(int(wrong.group(1) or 0)))
                return
            log.warning("JetStream refused an event: %s", data[:300].decode("utf-8", "replace"))
            future.set_exception(_unavailable())
        else:
            seq = _SEQ.search(data)
            future.set_result(int(seq.group(1)) if seq else 0)

    def expire(self, n: int) -> None:
        future, _ = self.waiting.pop(n, (None, None))
        if future is not None and not future.done():
            log.warning("no acknowledgement from JetStream in time")
            future.set_exception(_unavailable())


class Publisher:
    """Writes events to JetStream; each publish's future resolves with the sequence it was
    stored at. Each event carries a `Nats-Msg-Id` (a random per-process prefix and a counter:
    unique without a system call per event), so a publish retried under the same id after a
    lost acknowledgement is stored once (JetStream's duplicate window)."""

    def __init__(self, holder: BusHolder, timeout_s: float) -> None:
        self._holder = holder
        self._timeout_s = timeout_s
        self._acks: _Acks | None = None

    def new_id(self) -> str:
        return f"{_PREFIX}{next(_counter)}"

    async def submit(
        self,
        event: Event,
        msg_id: str,
        *,
        expected: int | None = None,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> asyncio.Future[int]:
        """Write one event to JetStream now (with `expected`, only if the room's last event
        has that sequence; `extra` headers ride along). The future resolves with the stored
        sequence, or fails with `Conflict` or `ChatError("unavailable")`; raises that at once
        if the bus is down."""
        bus = self._holder.bus
        if bus is None or not bus.connected:
            raise ChatError("unavailable", "the event bus is unavailable; try again")
        acks = self._acks
        if acks is None or acks.nc is not bus.nc:
            acks = self._acks = _Acks(bus.nc)
            await acks.start()
        n = next(_counter)
        loop = acks.loop
        future: asyncio.Future[int] = loop.create_future()
        acks.waiting[n] = (future, loop.call_later(self._timeout_s, acks.expire, n))
        pairs: tuple[tuple[str, str], ...] = (("Nats-Msg-Id", msg_id), *extra)
        if expected is not None:
            pairs += (
                ("Nats-Expected-Last-Subject-Sequence", str(expected)),
                ("Nats-Expected-Last-Subject-Sequence-Subject", _filter(event.room)),
            )
        try:
            acks.nc.publish_nowait(
                _subject(event.room, event.kind),
                payload(event),
                f"{acks.inbox}.{n}",
                header_block(pairs),
            )
        except Exception as exc:
            acks.waiting.pop(n)[1].cancel()
            log.warning("publish failed: %s", exc)
            raise _unavailable() from exc
        return future
