"""The dispatcher's own httpx transport: HTTP/1.1 POSTs written and read by an asyncio protocol.

A callback POST needs little of HTTP: write one request, read the status, skip at most
`ANSWER_MAX_BYTES` of an answer whose length is known, and keep the connection for the next
event of the same origin. httpx's own transport (httpcore and h11) and aiohttp do much more
per request; docs/benchmarks.md ("Dispatcher") has the figures that chose this one. Besides,
the request target is written exactly as it was registered (`httpx.URL.raw_path`): nothing on
the way decodes or re-encodes it, so the bytes on the wire are the bytes the whitelist checked.

An answer with no `Content-Length` (chunked, or until close), a longer one, or `Connection:
close` ends its connection after the status: the status is all a dispatcher needs. A request
cancelled halfway (a timeout) closes its connection, which may hold half an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator

import httpx

from services.dispatcher.guard import AddressGuard

__all__ = ["ANSWER_MAX_BYTES", "RefusedAddress", "WireTransport"]

ANSWER_MAX_BYTES = 64 * 1024  # of a callback's answer body, read and dropped
HEAD_MAX_BYTES = 64 * 1024  # status line and headers

Origin = tuple[bytes, str, int]  # scheme, host, port


class _Connection(asyncio.Protocol):
    """One kept-alive connection: bytes in, one answer's status out."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[None] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionResetError("connection closed by the callback"))

    async def _more(self) -> None:
        if self.lost:
            raise ConnectionResetError("connection closed by the callback")
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    async def exchange(self, request: bytes) -> tuple[int, list[tuple[bytes, bytes]], bool]:
        """Send `request`; the status, the headers, and whether the connection can be kept."""
        assert self.transport is not None
        self.buffer.clear()
        self.transport.write(request)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            if len(self.buffer) > HEAD_MAX_BYTES:
                raise ValueError("answer head too long")
            await self._more()
        lines = bytes(self.buffer[:end]).split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or len(parts[1]) != 3:
            raise ValueError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
        status = int(parts[1])
        headers = []
        length: int | None = None
        keep = parts[0] == b"HTTP/1.1"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip()
            headers.append((name, value))
            if name == b"content-length" and value.isdigit():
                length = int(value)
            elif name == b"transfer-encoding" or (name == b"connection" and b"close" in value):
                keep = False
        if length is None or length > ANSWER_MAX_BYTES:
            keep = False
        elif keep:
            while len(self.buffer) < end + 4 + length:
                await self._more()
            keep = len(self.buffer) == end + 4 + length  # nothing unasked-for after it
        return status, headers, keep

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class RefusedAddress(Exception):
    """The callback's host resolves to no address the guard admits."""


class _Empty(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        return
        yield b""  # pragma: no cover


class WireTransport(httpx.AsyncBaseTransport):
    """POSTs over pooled HTTP/1.1 connections, one request at a time on each."""

    def __init__(self, guard: AddressGuard | None = None, keepalive_per_origin: int = 64) -> None:
        self.guard = guard  # None: any address may be dialled
        self.keepalive_per_origin = keepalive_per_origin
        self._idle: dict[Origin, list[_Connection]] = {}
        self._ssl: ssl.SSLContext | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = (url.raw_scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        body = request.content
        head = [b"%s %s HTTP/1.1\r\n" % (request.method.encode(), url.raw_path)]
        head += [b"%s: %s\r\n" % (name, value) for name, value in request.headers.raw]
        head.append(b"\r\n")
        message = b"".join(head) + body
        connection = self._take(origin)
        if connection is not None:
            try:
                return await self._exchange(origin, connection, message, request)
            except ConnectionResetError:
                if connection.buffer:  # it had begun to answer: that is its answer
                    raise
                # closed by the callback while idle, as we wrote: not its fault, try anew
        return await self._exchange(origin, await self._connect(origin), message, request)

    async def _exchange(
        self, origin: Origin, connection: _Connection, message: bytes, request: httpx.Request
    ) -> httpx.Response:
        done = False
        try:
            status, headers, keep = await connection.exchange(message)
            done = True
        finally:
            if done and keep:
                self._give_back(origin, connection)
            else:
                connection.close()
        return httpx.Response(status, headers=headers, stream=_Empty(), request=request)

    def _take(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if not connection.lost:
                return connection
        return None

    def _give_back(self, origin: Origin, connection: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) < self.keepalive_per_origin:
            idle.append(connection)
        else:
            connection.close()

    async def _connect(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        context = None
        if scheme == b"https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        loop = asyncio.get_running_loop()
        addresses = [host]
        if self.guard is not None:  # dial only the very addresses that were checked
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            addresses = [str(i[4][0]) for i in found if self.guard.admits(str(i[4][0]))]
            if not addresses:
                raise RefusedAddress(f"{host} resolves to no address callbacks may reach")
        for n, address in enumerate(addresses):
            try:
                _, connection = await loop.create_connection(
                    _Connection,
                    address,
                    port,
                    ssl=context,
                    server_hostname=host if context else None,
                )
                break
            except OSError:
                if n == len(addresses) - 1:
                    raise
        return connection

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                with contextlib.suppress(Exception):
                    connection.close()
        self._idle.clear()
