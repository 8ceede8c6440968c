"""bench/chaos/proxy.py against a real TCP echo server: it forwards both ways, a stall holds
every byte until it ends (then delivers them in order), and a cut resets every connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bench.chaos.proxy import Proxy
from bench.util import free_port


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    target = server.sockets[0].getsockname()[1]
    made = Proxy("proxy-0", free_port(), target)
    await made.start()
    yield made
    await made.close()
    server.close()


async def connect(proxy: Proxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.port)


async def test_bytes_go_through_and_come_back(proxy: Proxy) -> None:
    reader, writer = await connect(proxy)
    writer.write(b"hello")
    assert await reader.readexactly(5) == b"hello"
    writer.close()


async def test_a_stall_holds_every_byte_until_it_ends(proxy: Proxy) -> None:
    reader, writer = await connect(proxy)
    writer.write(b"a")
    assert await reader.readexactly(1) == b"a"
    proxy.stall(True)
    writer.write(b"bc")
    pending = asyncio.ensure_future(reader.readexactly(2))
    done, _ = await asyncio.wait([pending], timeout=0.3)
    assert not done  # held, not lost
    proxy.stall(False)
    assert await pending == b"bc"
    writer.close()


async def test_a_cut_resets_every_connection_and_new_ones_go_through(proxy: Proxy) -> None:
    first, second = await connect(proxy), await connect(proxy)
    for _, writer in (first, second):
        writer.write(b"x")
    for reader, _ in (first, second):
        assert await reader.readexactly(1) == b"x"
    assert proxy.cut() == 2
    for reader, _ in (first, second):
        with pytest.raises((asyncio.IncompleteReadError, ConnectionResetError)):
            await asyncio.wait_for(reader.readexactly(1), 10)  # a TimeoutError fails the test
    reader, writer = await connect(proxy)
    writer.write(b"again")
    assert await reader.readexactly(5) == b"again"
    writer.close()
