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

__all__ = ["CountingProtocol", "main"]

_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


class CountingProtocol(asyncio.Protocol):
    posts = 0  # over every connection

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            match = _LENGTH.search(self.buf, 0, end + 2)
            total = end + 4 + (int(match.group(1)) if match else 0)
            if len(self.buf) < total:
                return
            post = self.buf.startswith(b"POST")
            del self.buf[:total]
            assert self.transport is not None
            if post:
                CountingProtocol.posts += 1
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            else:
                body = str(CountingProtocol.posts).encode()
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                )


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(CountingProtocol, "127.0.0.1", port)
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
