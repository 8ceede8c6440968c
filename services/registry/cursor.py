"""Opaque list cursors: where the next page starts, bound to the listing it came from."""

from __future__ import annotations

import base64
import binascii
import hashlib

__all__ = ["CursorError", "decode_cursor", "encode_cursor"]


class CursorError(ValueError):
    """Not a cursor this registry made for this listing."""


def _scope(room: str | None) -> str:
    return hashlib.sha256(("room:" + room if room is not None else "all").encode()).hexdigest()[:8]


def encode_cursor(seq: int, room: str | None) -> str:
    raw = f"{seq}:{_scope(room)}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, room: str | None) -> int:
    """The stream sequence the next page starts at."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CursorError("cursor is not one this API returned") from None
    seq, _, scope = raw.partition(":")
    if len(seq) > 19 or not seq.isdigit() or not 0 < int(seq) < 2**63:
        raise CursorError("cursor is not one this API returned")
    if scope != _scope(room):
        raise CursorError("cursor belongs to another listing (pass the same room as before)")
    return int(seq)
