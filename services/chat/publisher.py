"""Putting accepted events onto JetStream (docs/operations.md).

A publish is a core NATS message with a reply subject in this process's own inbox; JetStream's
acknowledgement (PubAck) comes back there and resolves the publish's future. So a publish is
written without waiting for the one before it to be acknowledged: the order on the stream is the
order of the writes on the one NATS connection, and the caller decides what waits for which ack
(services/chat/server.py fans a room's events out in that order, each only once it is stored).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import secrets
from collections.abc import Sequence
from dataclasses import fields

from services.chat.protocol import ChatError
from shared.bus import BusHolder
from shared.events import EVENT_TYPES, Event, compact_json, field_name
from shared.natsclient import Client, msg_id_header
from shared.subjects import event_subject

__all__ = ["Publisher", "payload"]

log = logging.getLogger(__name__)

PARTIAL_GIVE_UP_S = 30.0  # how long the rest of a half-stored request is retried

_subject = functools.lru_cache(maxsize=4096)(event_subject)  # a room's subjects, computed once

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
        self.waiting: dict[int, tuple[asyncio.Future[None], asyncio.TimerHandle]] = {}

    async def start(self) -> None:
        sub = await self.nc.subscribe(self.inbox + ".*")
        self.nc.handle_inline(sub._id, self._on_ack)

    def _on_ack(self, subject: bytes, data: bytes, headers: bytes) -> None:
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
            log.warning("JetStream refused an event: %s", data[:300].decode("utf-8", "replace"))
            future.set_exception(_unavailable())
        else:
            future.set_result(None)

    def expire(self, n: int) -> None:
        future, _ = self.waiting.pop(n, (None, None))
        if future is not None and not future.done():
            log.warning("no acknowledgement from JetStream in time")
            future.set_exception(_unavailable())


class Publisher:
    """Publishes events in order; each publish's future resolves once JetStream stored it.

    Each event carries a `Nats-Msg-Id` (a random per-process prefix and a counter: unique
    without a system call per event), so a publish retried after a lost acknowledgement is
    stored once (JetStream's duplicate window).
    """

    def __init__(self, holder: BusHolder, timeout_s: float) -> None:
        self._holder = holder
        self._timeout_s = timeout_s
        self._acks: _Acks | None = None

    def new_ids(self, n: int) -> list[str]:
        return [f"{_PREFIX}{next(_counter)}" for _ in range(n)]

    async def submit(self, event: Event, msg_id: str | None = None) -> asyncio.Future[None]:
        """Write one event to JetStream now; the future resolves when it is stored, or fails
        with `ChatError("unavailable")`. Raises that at once if the bus is down."""
        bus = self._holder.bus
        if bus is None or not bus.connected:
            raise ChatError("unavailable", "the event bus is unavailable; try again")
        acks = self._acks
        if acks is None or acks.nc is not bus.nc:
            acks = self._acks = _Acks(bus.nc)
            await acks.start()
        n = next(_counter)
        loop = acks.loop
        future: asyncio.Future[None] = loop.create_future()
        acks.waiting[n] = (future, loop.call_later(self._timeout_s, acks.expire, n))
        try:
            acks.nc.publish_nowait(
                _subject(event.room, event.kind),
                payload(event),
                f"{acks.inbox}.{n}",
                msg_id_header(msg_id or f"{_PREFIX}{n}"),
            )
        except Exception as exc:
            acks.waiting.pop(n)[1].cancel()
            log.warning("publish failed: %s", exc)
            raise _unavailable() from exc
        return future

    async def publish(
        self, events: Sequence[Event], *, msg_ids: Sequence[str] | None = None
    ) -> None:
        """Publish and wait until JetStream stored every one, one after the other (a `create`
        is never stored without its `enter`). Raise `ChatError("unavailable")` otherwise."""
        ids = list(msg_ids) if msg_ids is not None else self.new_ids(len(events))
        stored = 0
        try:
            for event, msg_id in zip(events, ids, strict=True):
                await (await self.submit(event, msg_id))
                stored += 1
        except ChatError:
            if stored == 0 or msg_ids is not None:
                raise
        if 0 < stored < len(events):
            # part of it is on the stream already, so callbacks will see it: finish the rest
            # (same message ids) rather than leave, say, a `create` without its `enter`
            rest, rest_ids = events[stored:], ids[stored:]
            if not await self._retry(rest, rest_ids, PARTIAL_GIVE_UP_S):
                raise _unavailable()

    async def publish_until_stored(self, events: Sequence[Event], give_up_s: float) -> bool:
        """For events that happen whether or not NATS is up (a user's connection dropped):
        retry with the same message ids until stored or `give_up_s` passes."""
        return await self._retry(events, self.new_ids(len(events)), give_up_s)

    async def _retry(self, events: Sequence[Event], ids: Sequence[str], give_up_s: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + give_up_s
        delay = 0.1
        while True:
            try:
                await self.publish(events, msg_ids=ids)
                return True
            except ChatError:
                if loop.time() + delay > deadline:
                    log.error("events lost after %.0fs without NATS: %s", give_up_s, events)
                    return False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
