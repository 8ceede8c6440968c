"""A server's websocket text frame, built once and written as it is to every recipient.

Frames from a server are never masked (RFC 6455 §5.1), so the bytes of one frame are the same for
every connection: a broadcast encodes the JSON once and the websocket frame once. No I/O here.
"""

from __future__ import annotations

import struct

__all__ = ["Outgoing", "text_frame"]

_FIN_TEXT = 0x81  # FIN bit and opcode 1 (text); RSV bits clear: never compressed


def text_frame(text: str) -> bytes:
    """One unfragmented, unmasked text frame holding `text` as UTF-8."""
    data = text.encode("utf-8")
    n = len(data)
    if n < 126:
        return bytes((_FIN_TEXT, n)) + data
    if n < 1 << 16:
        return struct.pack("!BBH", _FIN_TEXT, 126, n) + data
    return struct.pack("!BBQ", _FIN_TEXT, 127, n) + data


class Outgoing:
    """One frame for one or many recipients: its JSON text and its bytes on the wire."""

    __slots__ = ("text", "wire")

    def __init__(self, text: str) -> None:
        self.text = text
        self.wire = text_frame(text)

    def __repr__(self) -> str:
        return f"Outgoing({self.text!r})"
