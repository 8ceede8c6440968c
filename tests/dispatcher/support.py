"""Helpers for the dispatcher's end-to-end tests: feed events straight into JetStream, store
registrations as the registry does, and read back what a callback receiver got."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from typing import Any

import httpx

from shared.bus import POSITIONS_BUCKET, Bus, connect
from shared.codec import parse
from shared.events import ChatEvent, to_json
from shared.settings import CommonSettings
from shared.subjects import event_subject
from shared.subscriptions import Subscription, create_subscription, get_subscription
from tests.conftest import Received


async def bus_for(nats_url: str) -> Bus:
    return await connect(CommonSettings(nats_url=nats_url), "test")


async def feed(bus: Bus, room: str, start: int, stop: int, window: int = 200) -> None:
    """Publish chat events `m{start}` .. `m{stop-1}` in order, as the chat service would
    (each acknowledged by JetStream, with a `Nats-Msg-Id`); `window` publishes in flight."""
    for base in range(start, stop, window):
        futures = [
            await bus.js.publish_async(
                event_subject(room, "chat"),
                to_json(ChatEvent(room, "feeder", f"m{n}")),
                headers={"Nats-Msg-Id": f"{room}-{n}"},
            )
            for n in range(base, min(stop, base + window))
        ]
        await asyncio.gather(*futures)


async def feed_sequential(bus: Bus, room: str, start: int, stop: int) -> None:
    for n in range(start, stop):
        await bus.js.publish(
            event_subject(room, "chat"),
            to_json(ChatEvent(room, "feeder", f"m{n}")),
            headers={"Nats-Msg-Id": f"{room}-{n}"},
        )


async def register(bus: Bus, room: str, url: str) -> Subscription:
    """Store a registration exactly as the registry does."""
    sub, created = await create_subscription(bus, room, url)
    assert created
    return sub


async def register_and_feed(nats_url: str, room: str, url: str, start: int, stop: int) -> None:
    """Register `url` for `room`, then publish `m{start}` .. `m{stop-1}` there, on a connection
    of its own that is closed afterwards."""
    bus = await bus_for(nats_url)
    try:
        await register(bus, room, url)
        await feed(bus, room, start, stop)
    finally:
        await bus.close()


async def wait_gone(bus: Bus, sub_id: str, within_s: float) -> bool:
    """True once the registration is gone: its KV entry and its position."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if await get_subscription(bus, sub_id) is None:
            keys = await bus.js.stream_info(
                f"KV_{POSITIONS_BUCKET}", subjects_filter=f"$KV.{POSITIONS_BUCKET}.*.{sub_id}"
            )
            if not keys.state.subjects:
                return True
        await asyncio.sleep(0.1)
    return False


def numbers(received: Iterable[Received]) -> list[int]:
    """The `m{n}` numbers of chat events, in arrival order, after de-duplication by
    `webhook-id` (first arrival kept); a duplicate must carry the very same body."""
    seen: dict[str, bytes] = {}
    out: list[int] = []
    for r in received:
        msg_id = r.headers["webhook-id"]
        if msg_id in seen:
            assert seen[msg_id] == r.body, f"{msg_id} redelivered with another body"
            continue
        seen[msg_id] = r.body
        event = parse(r.body)
        assert isinstance(event, ChatEvent)
        out.append(int(event.message[1:]))
    return out


async def wait_until(predicate: Any, within_s: float, step_s: float = 0.1) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step_s)
    return bool(predicate())


def metric(base_url: str, name: str, labels: str = "") -> float:
    """Sum of the samples of one metric on a service's /metrics, over the label sets that
    contain `labels` (e.g. `outcome="refused"`); raises if the metric is not there at all."""
    text = httpx.get(base_url + "/metrics", timeout=5).text
    total, found = 0.0, False
    for line in text.splitlines():
        match = re.match(rf"{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
        if match:
            found = True
            if labels in (match.group(1) or ""):
                total += float(match.group(2))
    assert found, f"no metric {name}"
    return total
