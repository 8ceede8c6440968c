"""How the registry's `/docs` shows the subscription id, whose format shared/ids.py defines."""

from __future__ import annotations

from shared.ids import ID_LENGTH, ID_PREFIX

__all__ = ["EXAMPLE_ID", "ID_DESCRIPTION"]

EXAMPLE_ID = "sub_3qbmd2nuzvrhahc5ojlcfk4b"
ID_DESCRIPTION = (
    f"Subscription id: `{ID_PREFIX}` and {ID_LENGTH} base32 characters, derived from room and "
    "url, so registering the same pair again finds the same subscription."
)
