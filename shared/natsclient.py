"""nats-py's client with two shortcuts for a publisher on the hot path (the chat).

nats-py hands every message of a callback subscription to a task of its own through an
`asyncio.Queue`, and every `publish` awaits a flush kick that creates a fresh `asyncio.Future`
(on CPython 3.11 a `getpid()` system call each). For the chat's JetStream acknowledgements that is
most of the cost of an event (profiled in docs/benchmarks.md), so this subclass adds:

- `handle_inline(sid, handler)`: messages of that subscription go to a plain function, called in
  nats-py's read loop as they are parsed, with no queue, task or `Msg` object in between;
- `publish_nowait(...)`: the publish is added to nats-py's own pending buffer and its own flusher
  task is woken once per batch, so several publishes of one event-loop turn leave in one write.

Both use nats-py internals (`_process_msg`, `_pending`, `_flush_queue`) that have been stable
across its 2.x releases; tests/shared/test_natsclient.py runs them against a real nats-server, so
a nats-py upgrade that moves them fails there first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from nats.aio.client import Client as _NatsClient
from nats.errors import ConnectionClosedError, MaxPayloadError, OutboundBufferLimitError
from nats.protocol.command import hpub_cmd

__all__ = ["Client", "InlineHandler", "header_block", "parse_headers"]

# (subject, reply subject, payload, raw headers or empty) of one message, without a `Msg` object
InlineHandler = Callable[[bytes, bytes, bytes, bytes], None]

_HEADER_LINE = b"NATS/1.0\r\n"


def header_block(pairs: tuple[tuple[str, str], ...]) -> bytes:
    """A NATS header block of (name, value) pairs, such as JetStream's `Nats-Msg-Id` (ASCII, no
    CR/LF: the callers' names and values are generated, never user input)."""
    lines = b"".join(b"%s: %s\r\n" % (k.encode("ascii"), v.encode("ascii")) for k, v in pairs)
    return _HEADER_LINE + lines + b"\r\n"


def parse_headers(raw: bytes) -> tuple[str, dict[str, str]]:
    """(status, headers) of a raw header block: `NATS/1.0 100 Idle Heartbeat\r\nK: V\r\n`;
    ("", {}) for none."""
    if not raw:
        return "", {}
    lines = raw.decode("utf-8", "replace").split("\r\n")
    status = lines[0][len("NATS/1.0") :].strip().split(" ", 1)[0]
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip()] = value.strip()
    return status, headers


def _kick() -> asyncio.Future[None]:
    """What `publish_nowait` puts in the flusher's queue: a future already done, so the flusher
    has nothing to resolve and no future is created per publish."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


class Client(_NatsClient):
    def __init__(self) -> None:
        super().__init__()
        self._inline: dict[int, InlineHandler] = {}
        self._kicked: asyncio.Future[None] | None = None

    def handle_inline(self, sid: int, handler: InlineHandler) -> None:
        """Deliver the messages of subscription `sid` to `handler`, synchronously, in the read
        loop. The handler must be quick and must not raise."""
        self._inline[sid] = handler

    async def _process_msg(
        self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes
    ) -> None:
        handler = self._inline.get(sid)
        if handler is None:
            await super()._process_msg(sid, subject, reply, data, headers)
        else:
            handler(subject, reply, data, headers or b"")

    def _remove_sub(self, sid: int, max_msgs: int = 0) -> None:
        self._inline.pop(sid, None)
        super()._remove_sub(sid, max_msgs)

    def publish_nowait(self, subject: str, payload: bytes, reply: str, header: bytes) -> None:
        """Queue one publish (with a header block from `header_block`) for nats-py's flusher.

        Raises as `publish` would if the client is closed or not connected (the chat then
        answers `unavailable`; it never queues events for a reconnect it cannot promise), if
        the payload is too large, or if the pending buffer is full."""
        if self.is_closed:
            raise ConnectionClosedError
        if not self.is_connected or self._flush_queue is None:
            raise OutboundBufferLimitError
        if len(payload) > self._max_payload:
            raise MaxPayloadError
        cmd = hpub_cmd(subject, reply, header, payload)
        size = self._pending_data_size + len(cmd)
        if 0 < self._max_pending_size < size:
            raise OutboundBufferLimitError
        self._pending.append(cmd)
        self._pending_data_size = size
        self.stats["out_msgs"] += 1
        self.stats["out_bytes"] += len(payload)
        if self._flush_queue.empty():
            if self._kicked is None:
                self._kicked = _kick()
            self._flush_queue.put_nowait(self._kicked)
