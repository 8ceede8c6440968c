"""What the registry reads of a registration's past: why it ended (`shared/ended.py`) and its
delivery attempts (`shared/attempts.py`), and the record it leaves when `DELETE` ends one."""

from __future__ import annotations

import time

from shared.attempts import Attempt, ensure_attempts_stream, newest_attempts
from shared.bus import Bus
from shared.ended import Ended, EndedLog
from shared.ids import webhook_id
from shared.since import rfc3339
from shared.subscriptions import Gone

__all__ = ["History"]


class History:
    def __init__(self, keep_s: float, replicas: int) -> None:
        self.keep_s = keep_s
        self.replicas = replicas
        self.ended = EndedLog(keep_s, replicas)
        self._stream_for: Bus | None = None  # the bus the attempts stream was ensured on

    async def deleted(self, bus: Bus, gone: Gone) -> None:
        """Record that `DELETE` ended `gone`."""
        sub = gone.subscription
        last = webhook_id(sub.id, gone.delivered) if gone.delivered else None
        ended = Ended(sub.id, sub.room, sub.url, rfc3339(time.time(), 0), "deleted", None, last)
        await self.ended.record(bus, ended)

    async def attempts(self, bus: Bus, sub_id: str) -> list[tuple[int, Attempt]]:
        """Every attempt kept for `sub_id`, newest first, with its stream sequence. The stream
        is made here too, so that a registry started before any dispatcher can answer."""
        if self._stream_for is not bus:
            await ensure_attempts_stream(bus.js, self.keep_s, self.replicas)
            self._stream_for = bus
        return await newest_attempts(bus, sub_id)
