"""The dispatcher's own transport (services/dispatcher/transport.py) against a real HTTP server
on 127.0.0.1 that records the raw bytes it receives: keep-alive, answers of every shape, stale
connections, and the request target on the wire exactly as registered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from services.dispatcher.http import CallbackClient, NoAnswer
from services.dispatcher.transport import WireTransport

Answer = Callable[[int], bytes]  # request number (from 1) -> the raw answer (b"": close)


@dataclass
class Server:
    answer: Answer
    requests: list[bytes] = field(default_factory=list)  # request lines, as received
    connections: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                self.requests.append(lines[0])
                length = next(
                    int(line.split(b":")[1])
                    for line in lines
                    if line.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                answer = self.answer(len(self.requests))
                if not answer:
                    break
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def url(self, path: str = "/events") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


Serve = Callable[[Answer], Awaitable[Server]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def started(answer: Answer) -> Server:
        server = Server(answer)
        listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        servers.append(listening)
        server.port = listening.sockets[0].getsockname()[1]
        return server

    yield started
    for listening in servers:
        listening.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def client() -> CallbackClient:
    return CallbackClient(WireTransport(), timeout_s=2)


async def test_posts_on_one_kept_connection(serve: Serve) -> None:
    server = await serve(lambda n: OK)
    async with client() as c:
        for _ in range(5):
            assert await c.post(server.url(), b"<chat/>", {"webhook-id": "a_1"}) == 200
    assert server.connections == 1
    assert server.requests == [b"POST /events HTTP/1.1"] * 5


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000,
        b"HTTP/1.0 200 OK\r\n\r\nuntil close",
    ],
)
async def test_an_answer_of_unknown_or_long_length_ends_its_connection(
    serve: Serve, answer: bytes
) -> None:
    server = await serve(lambda n: answer)
    async with client() as c:
        first = await c.post(server.url(), b"x", {})
        second = await c.post(server.url(), b"x", {})
    assert first == second == int(answer[9:12])
    assert server.connections == 2


async def test_a_connection_closed_while_idle_is_not_the_callbacks_fault(
    serve: Serve,
) -> None:
    server = await serve(lambda n: OK if n % 2 else b"")  # closes after every answer
    async with client() as c:
        for _ in range(3):
            assert await c.post(server.url(), b"x", {}) == 200
            await asyncio.sleep(0.05)


async def test_no_answer_and_not_http_are_no_answer(
    serve: Serve,
) -> None:
    hangs = await serve(lambda n: b"")
    garbage = await serve(lambda n: b"SSH-2.0-OpenSSH\r\n\r\n")
    async with client() as c:
        for server in (hangs, garbage):
            with pytest.raises(NoAnswer):
                await c.post(server.url(), b"x", {})
        with pytest.raises(NoAnswer):
            await c.post("http://127.0.0.1:9/refused", b"x", {})


HOSTILE = [
    "/cb/..%3B/x",
    "/cb/%3A%40%21%24%26%27%28%29%2A%2C%3D",
    "/cb/a%2Fb?q=%2F%3F&r=%3B",
    "/cb/%25%20%7E",
    "/cb/caf%C3%A9",
]


@pytest.mark.parametrize("transport", ["wire", "httpx"])
async def test_the_target_on_the_wire_is_the_target_registered(
    serve: Serve, transport: str
) -> None:
    server = await serve(lambda n: OK)
    chosen: httpx.AsyncBaseTransport = (
        WireTransport() if transport == "wire" else httpx.AsyncHTTPTransport()
    )
    async with CallbackClient(chosen, timeout_s=2) as c:
        for path in HOSTILE:
            assert await c.post(server.url(path), b"x", {}) == 200
    assert server.requests == [f"POST {path} HTTP/1.1".encode() for path in HOSTILE]
