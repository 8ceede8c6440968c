"""The inline ordered consumer against a real nats-server: every message once, in order, with
its sequence, time and headers, and no message lost or repeated when its consumer is lost."""

from __future__ import annotations

import asyncio
import time

import pytest

from shared.natsclient import Client
from shared.ordered import OrderedTail
from tests.conftest import NatsServer

pytestmark = pytest.mark.e2e


async def test_every_message_once_in_order_across_a_lost_consumer(
    nats_server: NatsServer,
) -> None:
    nc = Client()
    await nc.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(name="T", subjects=["t.>"])
    got: list[tuple[int, float, str, bytes, dict[str, str]]] = []
    grew = asyncio.Event()

    def on(*message: object) -> None:
        got.append(message)  # type: ignore[arg-type]
        grew.set()

    async def until(count: int) -> None:
        while len(got) < count:
            grew.clear()
            await grew.wait()

    tail = OrderedTail(nc, js, "T", "t.>", on)
    for i in range(1, 101):
        await js.publish(f"t.{i % 3}", b"%d" % i, headers={"Nats-Msg-Id": f"m{i}"})
    await tail.start(51)  # from the middle
    for i in range(101, 201):
        await js.publish(f"t.{i % 3}", b"%d" % i, headers={"Nats-Msg-Id": f"m{i}"})
    await asyncio.wait_for(until(150), 10)
    assert [seq for seq, *_ in got] == list(range(51, 201))
    assert [data for *_, data, _ in got] == [b"%d" % i for i in range(51, 201)]
    assert got[0][2] == "t.0" and got[0][4] == {"Nats-Msg-Id": "m51"}
    assert abs(got[-1][1] - time.time()) < 60

    for name in await js.consumers_info("T"):  # the server loses the consumer
        await js.delete_consumer("T", name.name)
    for i in range(201, 301):
        await js.publish(f"t.{i % 3}", b"%d" % i)
    await asyncio.wait_for(until(250), 20)
    assert [seq for seq, *_ in got] == list(range(51, 301))
    await tail.stop()
    await nc.close()


async def test_a_consumer_that_cannot_be_made_yet_is_made_when_it_can(
    nats_server: NatsServer,
) -> None:
    nc = Client()
    await nc.connect(nats_server.url)
    js = nc.jetstream()
    got: list[int] = []
    arrived = asyncio.Event()

    def on(seq: int, *_: object) -> None:
        got.append(seq)
        arrived.set()

    tail = OrderedTail(nc, js, "LATE", "late.>", on)
    await tail.start(1)  # no such stream yet (as while a stream leader is being elected)
    await js.add_stream(name="LATE", subjects=["late.>"])
    await js.publish("late.1", b"x")
    await asyncio.wait_for(arrived.wait(), 20)
    assert got == [1]
    await tail.stop()
    await nc.close()
