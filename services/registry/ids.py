"""The subscription id's format, written down once: what `shared.subscriptions.subscription_id`
makes (`sub_` and the lower-case base32 of 15 bytes of a hash of room and url), as the routes
check it and as `/docs` shows it."""

from __future__ import annotations

import re

__all__ = ["EXAMPLE_ID", "ID_DESCRIPTION", "ID_LENGTH", "ID_PREFIX", "is_subscription_id"]

ID_PREFIX = "sub_"
ID_LENGTH = 24  # base32 characters: 15 bytes, no padding
_PATTERN = re.compile(f"{ID_PREFIX}[a-z2-7]{{{ID_LENGTH}}}")

EXAMPLE_ID = "sub_3qbmd2nuzvrhahc5ojlcfk4b"
ID_DESCRIPTION = (
    f"Subscription id: `{ID_PREFIX}` and {ID_LENGTH} base32 characters, derived from room and "
    "url, so registering the same pair again finds the same subscription."
)


def is_subscription_id(value: str) -> bool:
    """True for the shape the store makes; anything else cannot name a subscription (404)."""
    return _PATTERN.fullmatch(value) is not None
