"""Delivery decisions and the Standard Webhooks headers, with no I/O (SPEC §1, §2)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from enum import Enum

from shared.codec import CONTENT_TYPE

__all__ = ["Outcome", "backoff_delay", "classify", "sign", "webhook_headers", "webhook_id"]


class Outcome(Enum):
    DELIVERED = "delivered"  # 200: the registration stays
    REFUSED = "refused"  # any other status: the registration ends at once
    UNREACHABLE = "unreachable"  # no HTTP answer: retry within the window


def classify(status: int | None) -> Outcome:
    if status is None:
        return Outcome.UNREACHABLE
    return Outcome.DELIVERED if status == 200 else Outcome.REFUSED


def backoff_delay(attempt: int, initial_s: float, max_s: float) -> float:
    """Exponential: initial, 2xinitial, 4xinitial, ... capped at max_s (attempt counts from 0)."""
    return float(min(max_s, initial_s * 2 ** min(attempt, 32)))


def webhook_id(subscription_id: str, stream_sequence: int) -> str:
    """Unique per event and subscription, the same on every retry and redelivery."""
    return f"{subscription_id}_{stream_sequence}"


def _secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
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
