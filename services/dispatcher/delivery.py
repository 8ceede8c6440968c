"""Delivery decisions and the Standard Webhooks headers, with no I/O (docs/callbacks.md).

Everything here is a pure function or a small value: what an HTTP answer means for a
registration (`classify`), how long to wait before the next try and when to give up
(`RetryPolicy`), and the signature a receiver checks (`sign`,
and `verify` for the receiver's side).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from shared.codec import CONTENT_TYPE

__all__ = [
    "Outcome",
    "RetryPolicy",
    "backoff_delay",
    "classify",
    "sign",
    "verify",
    "webhook_headers",
]


class Outcome(Enum):
    DELIVERED = "delivered"  # 200: the registration stays
    REFUSED = "refused"  # any other status: the registration ends at once
    UNREACHABLE = "unreachable"  # no HTTP answer: retry within the window


def classify(status: int | None) -> Outcome:
    """Only 200 keeps a registration; 2xx and 3xx included, every other status ends it."""
    if status is None:
        return Outcome.UNREACHABLE
    return Outcome.DELIVERED if status == 200 else Outcome.REFUSED


def backoff_delay(attempt: int, initial_s: float, max_s: float) -> float:
    """Exponential: initial, 2xinitial, 4xinitial, ... capped at max_s (attempt counts from 0)."""
    return float(min(max_s, initial_s * 2 ** min(attempt, 32)))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try a silent callback again, and when its registration ends (docs/callbacks.md)."""

    window_s: float  # DISPATCH_RETRY_WINDOW_S, counted from the first failure
    initial_s: float  # first delay
    max_s: float  # longest delay

    def next_delay(self, attempt: int, first_failure: float, now: float) -> float | None:
        """The wait before retry number `attempt` (0-based), or None: give up now.

        The last retry is the latest one that still starts within the window; its delay is
        shortened so that it lands exactly at the window's end rather than being skipped.
        """
        remaining = first_failure + self.window_s - now
        if remaining <= 0:
            return None
        return min(backoff_delay(attempt, self.initial_s, self.max_s), remaining)


def _secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}">` keyed with the decoded secret."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": CONTENT_TYPE,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance_s: float = 300.0,
) -> bool:
    """What a receiver does (README, "Verifying a callback"): recompute the signature over the
    received id, timestamp and body; accept if any `v1,` signature in the header matches in
    constant time and the timestamp is within `tolerance_s` of `now` (replay protection).
    `headers` must have lower-case keys."""
    try:
        msg_id = headers["webhook-id"]
        timestamp = int(headers["webhook-timestamp"])
        given = headers["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, msg_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in given)
