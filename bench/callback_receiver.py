"""A fast callback receiver for the full path: an asyncio protocol that answers every POST with
200 (keep-alive) and counts them; `GET /count` returns the count.

It stands for integrators' servers, which run on machines of their own: on the benchmark's one
machine it must take as little CPU from the system under test as it can, so it is a bare
protocol rather than a web framework.

Run: `python -m bench.callback_receiver --port 9100`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from typing import Protocol

__all__ = ["Counter", "ReceiverProtocol", "main"]

_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


class Sink(Protocol):
    count: int

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
            post = self.buf.startswith(b"POST")
            body = bytes(self.buf[end + 4 : total])
            del self.buf[:total]
            assert self.transport is not None
            if not post:
                count = str(self.sink.count).encode()
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(count), count)
                )
                continue
            self.sink.got(body)
            if self.close:
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                self.transport.close()
                return
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    counter = Counter()
    server = await loop.create_server(lambda: ReceiverProtocol(counter), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="counting callback receiver")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
