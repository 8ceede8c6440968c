"""Opaque list cursors: where the next page starts (a stream sequence), bound to the listing it
came from: the registrations of one room, of all rooms, or one registration's attempts."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from typing import TypeVar

__all__ = ["CursorError", "decode_cursor", "encode_cursor", "newest_page"]

T = TypeVar("T")


class CursorError(ValueError):
    """Not a cursor this registry made for this listing."""


def _scope(room: str | None, attempts_of: str | None) -> str:
    if attempts_of is not None:
        listing = "attempts:" + attempts_of
    else:
        listing = "room:" + room if room is not None else "all"
    return hashlib.sha256(listing.encode()).hexdigest()[:8]


def encode_cursor(seq: int, room: str | None, attempts_of: str | None = None) -> str:
    raw = f"{seq}:{_scope(room, attempts_of)}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, room: str | None, attempts_of: str | None = None) -> int:
    """The stream sequence the next page starts at."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CursorError("cursor is not one this API returned") from None
    seq, _, scope = raw.partition(":")
    if len(seq) > 19 or not seq.isdigit() or not 0 < int(seq) < 2**63:
        raise CursorError("cursor is not one this API returned")
    if scope != _scope(room, attempts_of):
        raise CursorError("cursor belongs to another listing (pass the same room as before)")
    return int(seq)


def newest_page(
    items: Sequence[tuple[int, T]], start: int | None, limit: int
) -> tuple[list[T], int | None]:
    """One page of `items` (newest first: descending stream sequences): up to `limit` of those
    at or below `start` (from the newest if None), and the sequence the next page starts at
    (None: nothing more). Items added meanwhile have higher sequences, so a walk never repeats
    one; items dropped meanwhile (the oldest) are simply no longer there."""
    eligible = [(seq, item) for seq, item in items if start is None or seq <= start]
    following = eligible[limit][0] if len(eligible) > limit else None
    return [item for _, item in eligible[:limit]], following
