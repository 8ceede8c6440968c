"""`shared.natsclient.Client`'s shortcuts against a real nats-server: what they rely on in
nats-py's internals is exercised here, so a nats-py upgrade that moves them fails here first."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError, OutboundBufferLimitError

from shared.natsclient import Client, header_block, parse_headers
from tests.conftest import NatsServer


async def connected(server: NatsServer, **options: object) -> Client:
    nc = Client()
    await nc.connect(server.url, **options)  # type: ignore[arg-type]
    return nc


def test_header_block_is_a_nats_header_block() -> None:
    assert header_block((("Nats-Msg-Id", "abc-1"), ("A", "b"))) == (
        b"NATS/1.0\r\nNats-Msg-Id: abc-1\r\nA: b\r\n\r\n"
    )


async def test_publish_nowait_arrives_in_order_with_its_header(nats_server: NatsServer) -> None:
    nc = await connected(nats_server)
    got: list[Msg] = []
    done = asyncio.Event()

    async def collect(msg: Msg) -> None:
        got.append(msg)
        if len(got) == 500:
            done.set()

    await nc.subscribe("t.>", cb=collect)
    for i in range(500):
        nc.publish_nowait(
            f"t.{i % 7}", f"m{i}".encode(), "reply.x", header_block((("Nats-Msg-Id", f"id-{i}"),))
        )
    await asyncio.wait_for(done.wait(), 10)
    assert [m.data for m in got] == [f"m{i}".encode() for i in range(500)]
    assert [m.headers for m in got[:3]] == [{"Nats-Msg-Id": f"id-{i}"} for i in range(3)]
    assert got[0].reply == "reply.x"
    assert nc.stats["out_msgs"] == 500
    await nc.close()


async def test_inline_handler_gets_its_subscription_only(nats_server: NatsServer) -> None:
    nc = await connected(nats_server)
    inline: list[tuple[bytes, bytes, bytes, bytes]] = []
    queued: list[bytes] = []
    fast = await nc.subscribe("fast.*")
    nc.handle_inline(fast._id, lambda *message: inline.append(message))

    async def slow(msg: Msg) -> None:
        queued.append(msg.data)

    await nc.subscribe("slow.*", cb=slow)
    await nc.publish("fast.1", b"a")
    await nc.publish("slow.1", b"b")
    await nc.publish("fast.2", b"c", reply="r.2", headers={"K": "v"})
    await nc.flush()
    await asyncio.sleep(0.1)
    assert inline[:2] == [(b"fast.1", b"", b"a", b""), (b"fast.2", b"r.2", b"c", inline[1][3])]
    assert inline[1][3].startswith(b"NATS/1.0") and b"K: v" in inline[1][3]
    assert queued == [b"b"]

    await fast.unsubscribe()
    await nc.publish("fast.3", b"d")
    await nc.flush()
    await asyncio.sleep(0.1)
    assert len(inline) == 2  # the handler went with its subscription
    await nc.close()


async def test_publish_nowait_refuses_when_not_connected(nats_server: NatsServer) -> None:
    disconnected = asyncio.Event()

    async def on_disconnect() -> None:
        disconnected.set()

    nc = await connected(
        nats_server, disconnected_cb=on_disconnect, max_reconnect_attempts=-1, reconnect_time_wait=1
    )
    nats_server.stop()
    await asyncio.wait_for(disconnected.wait(), 10)
    with pytest.raises(OutboundBufferLimitError):
        nc.publish_nowait("t.1", b"x", "r", header_block((("Nats-Msg-Id", "1"),)))
    await nc.close()
    with pytest.raises(ConnectionClosedError):
        nc.publish_nowait("t.1", b"x", "r", header_block((("Nats-Msg-Id", "1"),)))


def test_parse_headers() -> None:
    assert parse_headers(b"") == ("", {})
    raw = b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 7\r\nbad line\r\n\r\n"
    assert parse_headers(raw) == ("100", {"Nats-Last-Consumer": "7"})
    assert parse_headers(b"NATS/1.0\r\nNats-Msg-Id: a-1\r\n\r\n") == ("", {"Nats-Msg-Id": "a-1"})
