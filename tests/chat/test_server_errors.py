"""No input ends a connection uncleanly: an unexpected exception while handling a request is
answered with an `error` frame, logged once, and the connection goes on being served."""

from __future__ import annotations

import asyncio
import logging

import pytest

from services.chat.frames import Outgoing
from shared.events import Event
from tests.chat.memory import Client, MemoryStream, make_server


class BuggyStream(MemoryStream):
    """Stands for a bug anywhere below `handle`: publishing raises something unexpected."""

    broken = False

    async def submit(
        self,
        event: Event,
        msg_id: str,
        *,
        expected: int | None = None,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> asyncio.Future[int]:
        if self.broken:
            raise KeyError("a bug")
        return await super().submit(event, msg_id, expected=expected, extra=extra)


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_unexpected_exception_is_an_error_frame_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    publisher = BuggyStream()
    server, _, _ = make_server(stream=publisher)
    c = Client(server)
    publisher.broken = True
    with caplog.at_level(logging.INFO):
        await c(op="enter", room="Lobby", user="ann", id=7)
    [frame] = c.frames()
    assert frame["op"] == "error" and frame["code"] == "bad_request" and frame["id"] == 7
    assert "internal error" in frame["message"]
    [record] = _errors(caplog)
    assert record.exc_info is not None and "KeyError" in str(record.exc_info[0])
    assert not c.conn.closing and not c.conn.closed
    publisher.broken = False
    await c(op="enter", room="Lobby", user="ann", id=8)  # still served
    assert c.frames()[0]["op"] == "entered"


class ExplodingLink:
    """A link that fails on its first frame: a bug in the fan-out of a chat."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []
        self.explode = False

    def send_frame(self, frame: Outgoing) -> bool:
        if self.explode:
            self.explode = False
            raise RuntimeError("a bug in the fan-out")
        self.sent.append(frame)
        return True

    def close_after(self, code: int, reason: str) -> None:
        raise AssertionError("nobody is closed here")


async def test_a_failed_fan_out_is_logged_once_and_the_room_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, _, _ = make_server()
    ann, bob = Client(server), Client(server)
    link = ExplodingLink()
    bob.conn._send = link.send_frame
    await ann(op="enter", room="Lobby", user="ann")
    await bob(op="enter", room="Lobby", user="bob")
    ann.frames()
    link.explode = True
    with caplog.at_level(logging.INFO):
        await asyncio.wait_for(ann(op="chat", room="Lobby", message="one", id=1), 5)
    assert [(f["op"], f.get("id")) for f in ann.frames()] == [("chat", 1)]
    assert len(_errors(caplog)) == 1
    await ann(op="chat", room="Lobby", message="two", id=2)  # the room's line is not stuck
    assert [(f["op"], f.get("id")) for f in ann.frames()] == [("chat", 2)]
    assert [f.text for f in link.sent][-1].endswith('"message":"two","seq":4}')
