"""The server's websocket frames against the `websockets` library's own serialisation."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from services.chat.frames import Outgoing, text_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_text_frame_is_what_websockets_sends(size: int) -> None:
    text = ("é" if size % 2 else "a") * size
    expected = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
    assert text_frame(text) == expected


def test_outgoing_builds_its_bytes_once() -> None:
    frame = Outgoing('{"op":"chat"}')
    assert frame.wire is frame.wire
    assert frame.wire == text_frame('{"op":"chat"}')
