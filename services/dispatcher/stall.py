"""Telling the dispatcher's own stalls from a callback's silence.

A process starved of CPU, stopped (SIGSTOP) or paused by the machine sees every POST in flight
time out when it runs again, though the callbacks answered at once. `LoopWatch` notices such a
stall by how late its own short sleeps end, and keeps a clock that does not run while the
process did not: a retry window counted on it is time the dispatcher was there to try.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["LoopWatch"]


class LoopWatch:
    def __init__(self, tick_s: float = 0.25, stall_s: float = 1.0) -> None:
        self.tick_s = tick_s
        self.stall_s = stall_s  # a tick this much late is a stall
        self.stalled_total = 0.0  # seconds of every stall so far
        self.last_stall_end = float("-inf")  # monotonic time the latest stall ended
        self.last_tick = time.monotonic()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            self.tick(time.monotonic())

    def tick(self, now: float) -> None:
        late = now - self.last_tick - self.tick_s
        if late > self.stall_s:
            self.stalled_total += late
            self.last_stall_end = now
        self.last_tick = now

    def stalled_since(self, since: float, now: float | None = None) -> bool:
        """Whether the process stalled after monotonic time `since` (a stall that just ended
        counts even before the next tick has recorded it)."""
        now = time.monotonic() if now is None else now
        pending = now - self.last_tick - self.tick_s > self.stall_s
        return pending or self.last_stall_end > since

    def running(self, now: float | None = None) -> float:
        """A monotonic clock that stands still during stalls."""
        return (time.monotonic() if now is None else now) - self.stalled_total
