"""The subscription id, defined once: `sub_` and the lower-case base32 (no padding) of the first
15 bytes of the SHA-256 of the JSON `[room, url]`, so registering the same pair again finds the
same subscription. The store makes ids with `subscription_id`; the registry refuses any other
shape with `is_subscription_id` (a 404 without a read) and describes the format in `/docs`."""

from __future__ import annotations

import base64
import hashlib
import json
import re

__all__ = ["ID_LENGTH", "ID_PREFIX", "is_subscription_id", "subscription_id", "webhook_id"]

ID_PREFIX = "sub_"
_ID_BYTES = 15
ID_LENGTH = _ID_BYTES * 8 // 5  # base32 characters: 24, no padding
_PATTERN = re.compile(f"{ID_PREFIX}[a-z2-7]{{{ID_LENGTH}}}")


def subscription_id(room: str, url: str) -> str:
    digest = hashlib.sha256(json.dumps([room, url]).encode()).digest()
    return ID_PREFIX + base64.b32encode(digest[:_ID_BYTES]).decode().lower()


def is_subscription_id(value: str) -> bool:
    """True for the shape `subscription_id` makes; anything else cannot name a subscription."""
    return _PATTERN.fullmatch(value) is not None


def webhook_id(sub_id: str, stream_sequence: int) -> str:
    """Unique per event and subscription, the same on every retry and redelivery: the stream
    sequence of an event never changes, whichever dispatcher replica delivers it. It also says
    where the event is in the stream, which is what a `since` of a new registration needs."""
    return f"{sub_id}_{stream_sequence}"
