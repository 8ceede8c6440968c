"""Replay, ended registrations and delivery attempts (docs/registry-api.md) with real processes:
nats-server, registry and dispatcher each a process, callbacks real HTTP servers, events
published to JetStream as the chat publishes them."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from shared.bus import Bus, connect
from shared.settings import CommonSettings
from shared.subjects import EVENTS_STREAM
from tests.conftest import API_TOKEN, CallbackReceiver, Received, System
from tests.dispatcher.support import (
    feed,
    feed_sequential,
    metric,
    numbers,
    wait_gone,
    wait_until,
)

pytestmark = pytest.mark.e2e

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


class FailsOnce(CallbackReceiver):
    """Answers 200, except 500 to its `fail_at`-th POST; keeps the POSTs it answered 200 (what
    an integrator has processed) in `processed`."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at = fail_at
        self.processed: list[Received] = []

    def record(self, request: Received) -> bool:
        dropped = super().record(request)
        self.status = 500 if len(self.received) == self.fail_at else 200
        if self.status == 200:
            self.processed.append(request)
        return dropped


async def register(
    api: httpx.AsyncClient, room: str, url: str, since: str | None = None
) -> httpx.Response:
    body = {"room": room, "url": url} | ({} if since is None else {"since": since})
    return await api.post("/v1/subscriptions", json=body)


async def ended_body(api: httpx.AsyncClient, sub_id: str, within_s: float = 15) -> Any:
    """The 404 body of an ended registration, once the record is there."""
    deadline = time.monotonic() + within_s
    while True:
        answer = await api.get(f"/v1/subscriptions/{sub_id}")
        if answer.status_code == 404 and answer.json()["detail"] == "ended":
            return answer.json()
        assert time.monotonic() < deadline, answer.text
        await asyncio.sleep(0.1)


async def all_attempts(
    api: httpx.AsyncClient, sub_id: str, limit: int, count: int, within_s: float = 5
) -> list[Any]:
    """Every attempt, page by page, once there are `count` (they are recorded a moment after
    the POST); the last walk if never."""
    deadline = time.monotonic() + within_s
    while True:
        items = await _walk(api, sub_id, limit)
        if len(items) >= count or time.monotonic() > deadline:
            return items
        await asyncio.sleep(0.1)


async def _walk(api: httpx.AsyncClient, sub_id: str, limit: int) -> list[Any]:
    items: list[Any] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit} | ({} if cursor is None else {"cursor": cursor})
        page = await api.get(f"/v1/subscriptions/{sub_id}/attempts", params=params)
        assert page.status_code == 200, page.text
        assert len(page.json()["items"]) <= limit
        items.extend(page.json()["items"])
        cursor = page.json()["next"]
        if cursor is None:
            return items


async def test_a_callback_ended_by_a_500_registers_again_and_misses_nothing(
    system: System,
) -> None:
    receiver = FailsOnce(fail_at=11)
    try:
        registry = system.service("registry", EVENT_CALLBACK_PREFIX=receiver.url)
        dispatcher = system.service("dispatcher")
        registry.start()
        dispatcher.start()
        room = "Recovery"
        bus = await connect(CommonSettings(nats_url=system.nats.url), "test")
        async with httpx.AsyncClient(base_url=registry.base_url, headers=AUTH) as api:
            first = await register(api, room, receiver.url)
            assert first.status_code == 201 and "replay_from" not in first.json()
            sub_id = first.json()["id"]
            await feed(bus, room, 0, 30)
            assert await wait_gone(bus, sub_id, 15)
            ended = await ended_body(api, sub_id)
            last = receiver.processed[-1].headers["webhook-id"]
            assert ended.pop("ended_at")
            assert ended == {
                "detail": "ended",
                "id": sub_id,
                "room": room,
                "url": receiver.url,
                "reason": "status",
                "status": 500,
                "last_webhook_id": last,
            }
            await feed(bus, room, 30, 40)  # while it is ended
            again = await register(api, room, receiver.url, since=last)
            assert again.status_code == 201, again.text
            assert again.json()["id"] == sub_id  # same room and URL: same id
            assert again.json()["replay_from"] is not None
            await feed(bus, room, 40, 50)  # live
            assert await wait_until(lambda: len(receiver.processed) >= 50, 20)
            await asyncio.sleep(0.3)  # nothing more comes
            assert numbers(receiver.processed) == list(range(50))
            assert len(receiver.processed) == 50  # no duplicate either
            replayed = [r.headers["webhook-id"] for r in receiver.processed[10:]]
            assert replayed[0] == receiver.received[10].headers["webhook-id"]  # the 500'd one

            attempts = await all_attempts(api, sub_id, limit=7, count=51)
            assert len(attempts) == 51
            assert [a["status"] for a in attempts].count(500) == 1
            assert attempts[-11]["status"] == 500
            assert attempts[-11]["webhook_id"] == receiver.received[10].headers["webhook-id"]
            assert [a["webhook_id"] for a in reversed(attempts)] == [
                r.headers["webhook-id"] for r in receiver.received
            ]
            assert all(a["error"] is None and a["duration_ms"] >= 0 for a in attempts)
        await bus.close()
    finally:
        receiver.close()


async def test_since_a_time_replays_what_was_stored_from_then_on(
    system: System, receiver_factory: Any
) -> None:
    early, later = receiver_factory(), receiver_factory()
    registry = system.service("registry", EVENT_CALLBACK_PREFIX=f"{early.url} {later.url}")
    registry.start()
    system.service("dispatcher").start()
    room = "Timed"
    bus = await connect(CommonSettings(nats_url=system.nats.url), "test")
    try:
        await feed(bus, room, 0, 10)
        await asyncio.sleep(0.05)
        since = datetime.now(UTC)
        await asyncio.sleep(0.05)
        await feed(bus, room, 10, 20)
        async with httpx.AsyncClient(base_url=registry.base_url, headers=AUTH) as api:
            answer = await register(api, room, later.url, since=since.isoformat())
            assert answer.status_code == 201, answer.text
            replay_from = datetime.fromisoformat(answer.json()["replay_from"])
            assert since <= replay_from <= datetime.now(UTC)
            nothing_held = await register(api, room, early.url, since="2999-01-01T00:00:00Z")
            assert nothing_held.json()["replay_from"] is None
            await feed(bus, room, 20, 25)
            assert numbers(later.wait_for(15)) == list(range(10, 25))
            assert numbers(early.wait_for(5)) == list(range(20, 25))
            repeated = await register(api, room, later.url, since="2000-01-01T00:00:00Z")
            assert repeated.status_code == 200 and "replay_from" not in repeated.json()
            bad = await register(api, room, later.url + "/x", since="yesterday")
            assert bad.status_code == 422
        await asyncio.sleep(0.3)
        assert len(later.received) == 15 and len(early.received) == 5
    finally:
        await bus.close()


async def test_since_beyond_retention_starts_at_the_oldest_held_event(
    system: System, receiver_factory: Any
) -> None:
    by_id, by_time = receiver_factory(), receiver_factory()
    small = {"EVENTS_MAX_BYTES": "4000"}
    registry = system.service(
        "registry", EVENT_CALLBACK_PREFIX=f"{by_id.url} {by_time.url}", **small
    )
    registry.start()
    dispatcher = system.service("dispatcher", **small)
    dispatcher.start()
    room = "Forgetful"
    settings = CommonSettings(nats_url=system.nats.url, events_max_bytes=4000)
    bus: Bus = await connect(settings, "test")
    try:
        await feed(bus, room, 0, 200)
        first = int((await bus.js.stream_info(EVENTS_STREAM)).state.first_seq)
        assert first > 10  # the oldest are gone
        async with httpx.AsyncClient(base_url=registry.base_url, headers=AUTH) as api:
            old_id = "sub_" + "a" * 24 + "_3"
            answer = await register(api, room, by_id.url, since=old_id)
            assert answer.status_code == 201 and answer.json()["replay_from"] is not None
            answer = await register(api, room, by_time.url, since="2000-01-01T00:00:00+01:00")
            assert answer.status_code == 201 and answer.json()["replay_from"] is not None
        held = list(range(first - 1, 200))  # sequence n is m{n-1}: the room has every event
        assert numbers(by_id.wait_for(len(held))) == held
        assert numbers(by_time.wait_for(len(held))) == held
    finally:
        await bus.close()
    assert metric(dispatcher.base_url, "dispatcher_events_expired_total") == 0


async def test_why_a_registration_ended_and_its_attempts(
    system: System, receiver_factory: Any
) -> None:
    silent = receiver_factory(drop_first=10**6)
    flaky = receiver_factory(drop_first=2)
    deleted = receiver_factory()
    urls = (silent.url, flaky.url, deleted.url)
    registry = system.service("registry", EVENT_CALLBACK_PREFIX=" ".join(urls))
    registry.start()
    quick = {"DISPATCH_RETRY_WINDOW_S": "1.5", "DISPATCH_BACKOFF_INITIAL_S": "0.2"}
    system.service("dispatcher", **quick).start()
    room = "Endings"
    bus = await connect(CommonSettings(nats_url=system.nats.url), "test")
    async with httpx.AsyncClient(base_url=registry.base_url, headers=AUTH) as api:
        ids = [(await register(api, room, url)).json()["id"] for url in urls]
        await feed(bus, room, 0, 3)
        tried = [r.headers["webhook-id"] for r in flaky.wait_for(5)]
        assert tried == [f"{ids[1]}_{n}" for n in (1, 1, 1, 2, 3)]  # two unanswered, then 200s
        assert numbers(deleted.wait_for(3)) == [0, 1, 2]

        silent_end = await ended_body(api, ids[0])
        assert silent_end["reason"] == "no_answer"
        assert silent_end["status"] is None and silent_end["last_webhook_id"] is None
        attempts = await all_attempts(api, ids[0], limit=100, count=len(silent.received))
        assert len(attempts) == len(silent.received) >= 2
        assert all(a["status"] is None and "closed by the callback" in a["error"] for a in attempts)
        assert {a["webhook_id"] for a in attempts} == {f"{ids[0]}_1"}

        flaky.status = 404
        await feed(bus, room, 3, 4)
        flaky_end = await ended_body(api, ids[1])
        assert (flaky_end["reason"], flaky_end["status"]) == ("status", 404)
        assert flaky_end["last_webhook_id"] == f"{ids[1]}_3"
        attempts = await _walk(api, ids[1], limit=2)  # there as soon as the end is
        assert [a["status"] for a in attempts] == [404, 200, 200, 200, None, None]
        assert [a["webhook_id"] for a in attempts] == [f"{ids[1]}_{n}" for n in (4, 3, 2, 1, 1, 1)]
        assert [a["error"] is None for a in attempts] == [True] * 4 + [False] * 2
        ats = [datetime.fromisoformat(a["at"]) for a in attempts]
        assert ats == sorted(ats, reverse=True)

        assert numbers(deleted.wait_for(4)) == [0, 1, 2, 3]
        await asyncio.sleep(1.0)  # its position is stored
        assert (await api.delete(f"/v1/subscriptions/{ids[2]}")).status_code == 204
        deleted_end = await ended_body(api, ids[2])
        assert (deleted_end["reason"], deleted_end["status"]) == ("deleted", None)
        assert deleted_end["last_webhook_id"] == f"{ids[2]}_4"
        assert len(await all_attempts(api, ids[2], limit=100, count=4)) == 4

        never = "sub_" + "b" * 24
        for path in (f"/v1/subscriptions/{never}", f"/v1/subscriptions/{never}/attempts"):
            answer = await api.get(path)
            assert (answer.status_code, answer.json()) == (404, {"detail": "not found"})
    await bus.close()


async def test_a_replay_meets_the_live_events_without_gap_or_duplicate(
    system: System, receiver_factory: Any
) -> None:
    """Events keep coming while the registration is made and while it replays: the held ones,
    then the live ones, each once, in order."""
    receiver = receiver_factory()
    registry = system.service("registry", EVENT_CALLBACK_PREFIX=receiver.url)
    registry.start()
    system.service("dispatcher", DISPATCH_READ_AHEAD="10").start()
    room = "Busy"
    bus = await connect(CommonSettings(nats_url=system.nats.url), "test")
    try:
        await feed(bus, room, 0, 400)
        live = asyncio.create_task(feed_sequential(bus, room, 400, 700))
        await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=registry.base_url, headers=AUTH) as api:
            answer = await register(api, room, receiver.url, since=f"sub_{'c' * 24}_100")
            assert answer.status_code == 201, answer.text
        await live
        assert numbers(receiver.wait_for(600, timeout=30)) == list(range(100, 700))
        await asyncio.sleep(0.3)
        assert len(receiver.received) == 600
    finally:
        await bus.close()
