"""Recording every POST to a callback in the stream `VOLANO_ATTEMPTS` (`shared/attempts.py`)
without slowing deliveries down.

The dispatcher POSTs thousands of events a second; awaiting a JetStream acknowledgement for
each attempt would put a NATS round trip on that path, and even a publish per POST costs a
wake-up of nats-py's flusher and a socket write when POSTs come one per event-loop turn (one
fast callback: a third more CPU per delivery, measured). So a POST only appends its attempt to
a queue here; every `FLUSH_S` the queue is encoded and published as plain core publishes into
nats-py's outgoing buffer (`Client.publish_nowait`), written in one go. The order of one
connection's publishes is the order the stream stores them in, so a registration's attempts
keep their order. While NATS is away, attempts wait here in order (at most `BUFFER`, the
oldest dropped first, with a warning) and go out when it is back.

The trade-off: an attempt shows in the API up to `FLUSH_S` late, and with no acknowledgement,
one caught in a connection that breaks (or in a process that is killed) is lost. Attempts are
a diagnostic record, not deliveries (those are at least once, by positions).
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
FLUSH_S = 0.1
_NO_HEADERS = b"NATS/1.0\r\n\r\n"

# (registration id, when the POST started, webhook-id, status, error, duration ms)
_Waiting = tuple[str, float, str, int | None, str | None, float]


class AttemptLog:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.waiting: deque[_Waiting] = deque()
        self.dropped = 0

    def record(
        self, sub_id: str, msg_id: str, started: float, status: int | None, error: str | None
    ) -> None:
        """One POST that started at unix time `started` and ended now."""
        if len(self.waiting) >= BUFFER:
            self.waiting.popleft()
            self.dropped += 1
        duration_ms = round((time.time() - started) * 1000, 1)
        self.waiting.append((sub_id, started, msg_id, status, error, duration_ms))

    def send(self) -> None:
        """Publish what waits, in order, until NATS refuses one (it is kept for later)."""
        while self.waiting:
            sub_id, started, msg_id, status, error, duration_ms = self.waiting[0]
            data = Attempt(started, msg_id, status, error, duration_ms).to_json()
            try:
                self.bus.nc.publish_nowait(attempts_subject(sub_id), data, "", _NO_HEADERS)
            except Exception:
                return
            self.waiting.popleft()

    async def run(self) -> None:
        """Send what waits every `FLUSH_S`; warn about attempts dropped while NATS was away.
        The supervisor sends the last ones itself, after the POSTs in hand at shutdown."""
        while True:
            await asyncio.sleep(FLUSH_S)
            self.send()
            if self.dropped:
                log.warning("%s delivery attempts not recorded: NATS was away", self.dropped)
                self.dropped = 0
