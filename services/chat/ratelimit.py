"""Flood control (docs/websocket.md): a token bucket per connection, with the clock passed in."""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """`rate` requests a second on average, bursts of up to `burst`; `rate` 0 admits all."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = now  # when `_tokens` was last brought up to date

    def allow(self, now: float) -> bool:
        """Take one token if there is one."""
        if self.rate <= 0:
            return True
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
