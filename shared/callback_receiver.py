"""The project's one callback receiver: a bare asyncio HTTP/1.1 server standing for an
integrator's. Its uses, one each:

- `python -m shared.callback_receiver` (the README's demo, and `callback-demo` in
  deploy/k8s/overlays/dev, which runs it from the application image) prints each event's
  `webhook-id` and XML as it arrives;
- `--count` (bench/harness.py) only counts the POSTs; `GET` anything answers the count;
- bench/dispatcher_bench.py and bench/scale.py serve `ReceiverProtocol` with sinks of their own;
- the tests' `CallbackReceiver` runs it on a thread of its own, records every POST and answers
  what a test asks for (a status, a delay, a dropped connection).

On the benchmarks' one machine it must take as little CPU from the system under test as it can:
`ReceiverProtocol` finds a request's end and hands its body on, and parses nothing more; only
the recording and printing modes read the request line and headers.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import threading
import weakref
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol

__all__ = [
    "CallbackReceiver",
    "Counter",
    "Printer",
    "Received",
    "ReceiverProtocol",
    "Recorder",
    "RecordingProtocol",
    "main",
]

_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


class Sink(Protocol):
    @property
    def count(self) -> int: ...

    def got(self, body: bytes) -> None: ...


class Counter:
    """The least a sink does: count the POSTs."""

    def __init__(self) -> None:
        self.count = 0

    def got(self, body: bytes) -> None:
        self.count += 1


class ReceiverProtocol(asyncio.Protocol):
    """Reads each request; a POST's body goes to `sink` and is answered 200, kept alive (or
    closed after the answer with `close`); any other request is answered the sink's count."""

    def __init__(self, sink: Sink, close: bool = False) -> None:
        self.sink = sink
        self.close = close
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            match = _LENGTH.search(self.buf, 0, end + 2)
            total = end + 4 + (int(match.group(1)) if match else 0)
            if len(self.buf) < total:
                return
            assert self.transport is not None
            if not self.buf.startswith(b"POST"):
                del self.buf[:total]
                count = str(self.sink.count).encode()
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(count), count)
                )
                continue
            keep = self.posted(end, bytes(self.buf[end + 4 : total]))
            del self.buf[:total]
            if not keep:
                return

    def posted(self, head_end: int, body: bytes) -> bool:
        """Takes and answers one POST, whose request line and headers are `self.buf[:head_end]`
        until this returns; False when the connection is closed."""
        assert self.transport is not None
        self.sink.got(body)
        if self.close:
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            self.transport.close()
            return False
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        return True


# --- recording and printing: the request line and headers are read --------------------------


@dataclass
class Received:
    """One POST: its path, its headers (names lower-cased) and its body."""

    path: str
    headers: dict[str, str]
    body: bytes


def parse_head(head: bytes | bytearray) -> tuple[str, dict[str, str]]:
    """The path and the headers (names lower-cased, the last of a repeated one) of a request's
    head: its request line and header lines, without the blank line."""
    request_line, *lines = head.decode("iso-8859-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return request_line.split(" ")[1], headers


class Recorder:
    """Keeps every POST in `received` (thread-safe: `wait_for` may be called from any thread)
    and says how to answer it: no answer at all (the connection closed) for the first
    `drop_first`, else `status` after `delay_s`, with a Location of `location` for a 3xx."""

    def __init__(self, status: int = 200, delay_s: float = 0.0, drop_first: int = 0) -> None:
        self.status = status
        self.delay_s = delay_s
        self.drop_first = drop_first
        self.location = "http://127.0.0.1:9/elsewhere"  # where a 3xx answer points
        self.received: list[Received] = []
        self._cond = threading.Condition()

    @property
    def count(self) -> int:
        return len(self.received)

    def record(self, request: Received) -> bool:
        """Keeps `request`; True when it gets no answer."""
        with self._cond:
            self.received.append(request)
            self._cond.notify_all()
            return len(self.received) <= self.drop_first

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)


class Printer(Recorder):
    """Prints each POST's `webhook-id` and body (an event's XML) and keeps nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.printed = 0

    @property
    def count(self) -> int:
        return self.printed

    def record(self, request: Received) -> bool:
        self.printed += 1
        xml = request.body.decode("utf-8", "replace")
        print(request.headers.get("webhook-id", ""), xml, end="" if xml.endswith("\n") else "\n")
        sys.stdout.flush()
        return False


class RecordingProtocol(ReceiverProtocol):
    """`ReceiverProtocol` for a `Recorder`: each POST is recorded with its path and headers and
    answered as the recorder says; a delayed answer waits on the event loop, not in it, so a
    slow callback delays no other connection."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(recorder)  # type: ignore[arg-type]  # has no got(): posted() records
        self.recorder = recorder

    def posted(self, head_end: int, body: bytes) -> bool:
        assert self.transport is not None
        path, headers = parse_head(self.buf[:head_end])
        if self.recorder.record(Received(path, headers, body)):
            self.transport.close()  # closed without an answer
            return False
        if self.recorder.delay_s:
            asyncio.get_running_loop().call_later(self.recorder.delay_s, self.answer)
        else:
            self.answer()
        return True

    def answer(self) -> None:
        assert self.transport is not None
        if self.transport.is_closing():
            return
        status = self.recorder.status
        head = f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        if 300 <= status < 400:
            head += f"Location: {self.recorder.location}\r\n"
        self.transport.write(f"{head}Content-Length: 0\r\n\r\n".encode())


class CallbackReceiver(Recorder):
    """A `Recorder` served on 127.0.0.1 (a free port) by an event loop on a thread of its own,
    from construction until `close`."""

    def __init__(self, status: int = 200, delay_s: float = 0.0, drop_first: int = 0) -> None:
        super().__init__(status, delay_s, drop_first)
        self._loop = asyncio.new_event_loop()
        self._protocols: weakref.WeakSet[RecordingProtocol] = weakref.WeakSet()
        self.thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.thread.start()
        made = self._loop.create_server(self._protocol, "127.0.0.1", 0)
        self._server = asyncio.run_coroutine_threadsafe(made, self._loop).result()
        self.port: int = self._server.sockets[0].getsockname()[1]

    def _protocol(self) -> RecordingProtocol:
        protocol = RecordingProtocol(self)
        self._protocols.add(protocol)
        return protocol

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def close(self) -> None:
        """Stops listening, drops every connection (and the answers still delayed)."""
        if self._loop.is_closed():
            return

        def stop() -> None:
            self._server.close()
            for protocol in list(self._protocols):
                if protocol.transport is not None:
                    protocol.transport.abort()
            self._loop.call_soon(self._loop.stop)  # after the connections' ends, just queued

        self._loop.call_soon_threadsafe(stop)
        self.thread.join()
        self._loop.close()


async def serve(host: str, port: int, count_only: bool) -> None:
    loop = asyncio.get_running_loop()
    if count_only:
        counter = Counter()
        server = await loop.create_server(lambda: ReceiverProtocol(counter), host, port)
    else:
        printer = Printer()
        server = await loop.create_server(lambda: RecordingProtocol(printer), host, port)
        print(f"callback receiver listening on http://{host}:{port}/", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="a callback receiver: prints each event's webhook-id and XML, answers 200"
    )
    parser.add_argument("--host", default="127.0.0.1", help="where to listen (127.0.0.1)")
    parser.add_argument("--port", type=int, default=9000, help="where to listen (9000)")
    parser.add_argument("--count", action="store_true", help="print nothing, only count POSTs")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
