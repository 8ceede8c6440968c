"""Putting accepted events onto JetStream (SPEC §5)."""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Sequence

from services.chat.protocol import ChatError
from shared.bus import BusHolder
from shared.events import Event, to_json
from shared.subjects import event_subject

__all__ = ["Publisher"]

log = logging.getLogger(__name__)

PARTIAL_GIVE_UP_S = 30.0  # how long the rest of a half-stored request is retried

_subject = functools.lru_cache(maxsize=4096)(event_subject)  # a room's subjects, computed once


class Publisher:
    """Publishes events in order and returns only once JetStream has stored every one of them.

    Each event carries a `Nats-Msg-Id`, so a publish retried after a lost acknowledgement is
    stored once (JetStream's duplicate window).
    """

    def __init__(self, holder: BusHolder, timeout_s: float) -> None:
        self._holder = holder
        self._timeout_s = timeout_s

    async def publish(
        self, events: Sequence[Event], *, msg_ids: Sequence[str] | None = None
    ) -> None:
        """Raise `ChatError("unavailable")` if JetStream did not take them all."""
        bus = self._holder.bus
        if bus is None or not bus.connected:
            raise ChatError("unavailable", "the event bus is unavailable; try again")
        ids = list(msg_ids) if msg_ids is not None else [uuid.uuid4().hex for _ in events]
        stored = 0
        try:
            for event, msg_id in zip(events, ids, strict=True):
                await bus.js.publish(
                    _subject(event.room, event.kind),
                    to_json(event),
                    timeout=self._timeout_s,
                    headers={"Nats-Msg-Id": msg_id},
                )
                stored += 1
        except Exception as exc:
            log.warning("publish failed: %s", exc)
            if stored == 0 or msg_ids is not None:
                raise ChatError(
                    "unavailable", "the event bus did not take the event; try again"
                ) from exc
        if 0 < stored < len(events):
            # part of it is on the stream already, so callbacks will see it: finish the rest
            # (same message ids) rather than leave, say, a `create` without its `enter`
            rest, rest_ids = events[stored:], ids[stored:]
            if not await self._retry(rest, rest_ids, PARTIAL_GIVE_UP_S):
                raise ChatError("unavailable", "the event bus did not take the event; try again")

    async def publish_until_stored(self, events: Sequence[Event], give_up_s: float) -> bool:
        """For events that happen whether or not NATS is up (a user's connection dropped):
        retry with the same message ids until stored or `give_up_s` passes."""
        return await self._retry(events, [uuid.uuid4().hex for _ in events], give_up_s)

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
