"""Recording every POST to a callback in the stream `VOLANO_ATTEMPTS` (`shared/attempts.py`)
without slowing deliveries down.

The dispatcher POSTs thousands of events a second; awaiting a JetStream acknowledgement for
each attempt would put a NATS round trip on that path. So an attempt is a plain publish, queued
in nats-py's outgoing buffer (`Client.publish_nowait`) and written with the others of the same
event-loop turn. The order of one connection's publishes is the order the stream stores them
in, so a registration's attempts keep their order. While NATS is away, attempts wait here in
order (at most `BUFFER`, the oldest dropped first, with a warning) and go out when it is back.

The trade-off: no acknowledgement means an attempt caught in a connection that breaks is lost.
Attempts are a diagnostic record, not deliveries (those are at least once, by positions).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from shared.attempts import Attempt, attempts_subject
from shared.bus import Bus

__all__ = ["AttemptLog"]

log = logging.getLogger(__name__)

BUFFER = 100_000  # attempts held while NATS is away
RETRY_S = 1.0
_NO_HEADERS = b"NATS/1.0\r\n\r\n"


class AttemptLog:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.waiting: deque[tuple[str, bytes]] = deque()
        self.dropped = 0

    def record(
        self, sub_id: str, msg_id: str, started: float, status: int | None, error: str | None
    ) -> None:
        """One POST that started at unix time `started` and ended now."""
        duration_ms = round((time.time() - started) * 1000, 1)
        attempt = Attempt(started, msg_id, status, error, duration_ms)
        if len(self.waiting) >= BUFFER:
            self.waiting.popleft()
            self.dropped += 1
        self.waiting.append((attempts_subject(sub_id), attempt.to_json()))
        if len(self.waiting) == 1:
            self.send()

    def send(self) -> None:
        """Publish what waits, in order, until NATS refuses one (it is kept for later)."""
        while self.waiting:
            subject, data = self.waiting[0]
            try:
                self.bus.nc.publish_nowait(subject, data, "", _NO_HEADERS)
            except Exception:
                return
            self.waiting.popleft()

    async def run(self) -> None:
        """Send what waited for NATS, every `RETRY_S`; warn about attempts dropped meanwhile."""
        while True:
            await asyncio.sleep(RETRY_S)
            self.send()
            if self.dropped:
                log.warning("%s delivery attempts not recorded: NATS was away", self.dropped)
                self.dropped = 0
