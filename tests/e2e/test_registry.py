"""The registry as a real process (issue 4): in force from its answer, durable across restarts of
every part, and safe with several replicas at once. nats-server, registry and dispatcher are
separate processes; callbacks are real HTTP servers; events are published to JetStream exactly
as the chat service publishes them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import nats
import pytest

from shared.codec import parse
from shared.events import ChatEvent, to_json
from shared.subjects import EVENTS_STREAM, event_subject
from tests.conftest import API_TOKEN, ROOT, CallbackReceiver, Service, System, free_port

pytestmark = pytest.mark.e2e

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


async def publish(nats_url: str, events: list[ChatEvent]) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for event in events:
            await js.publish(event_subject(event.room, event.kind), to_json(event))
    finally:
        await nc.close()


def messages(receiver: CallbackReceiver, path: str) -> list[str]:
    """The chat messages a path received, once each (at least once: a redelivery after a
    dispatcher restart carries the same webhook-id)."""
    found: dict[str, str] = {}
    for r in receiver.received:
        if r.path == path:
            event = parse(r.body)
            assert isinstance(event, ChatEvent)
            assert found.setdefault(r.headers["webhook-id"], event.message) == event.message
    return list(found.values())


def start_registry_and_dispatcher(system: System, prefix: str) -> tuple[Service, Service]:
    """A registry admitting `prefix` and a dispatcher, each a running process."""
    registry = system.service("registry", EVENT_CALLBACK_PREFIX=prefix)
    dispatcher = system.service("dispatcher")
    registry.start()
    dispatcher.start()
    return registry, dispatcher


def verify_signature(secret: str, headers: dict[str, str], body: bytes) -> None:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"


async def test_in_force_from_the_answer_whatever_the_dispatcher_does(
    system: System, receiver_factory: Any
) -> None:
    """Each registration is followed at once by an event; every registration receives exactly
    the events published after its answer, whether the dispatcher runs or not."""
    receiver: CallbackReceiver = receiver_factory()
    base = f"http://127.0.0.1:{receiver.port}"
    registry, dispatcher = start_registry_and_dispatcher(system, base)
    room = "In Force"
    n = 6
    nc = await nats.connect(system.nats.url)
    js = nc.jetstream()
    try:
        async with httpx.AsyncClient(base_url=registry.base_url, headers=AUTH) as client:
            for i in range(n):
                if i == n // 2:
                    dispatcher.stop()  # the second half registers while no dispatcher runs
                answer = await client.post(
                    "/v1/subscriptions", json={"room": room, "url": f"{base}/{i}"}
                )
                assert answer.status_code == 201, answer.text
                await js.publish(event_subject(room, "chat"), to_json(ChatEvent(room, "u", str(i))))
    finally:
        await nc.close()
    dispatcher.start()
    expected = {f"/{i}": [str(m) for m in range(i, n)] for i in range(n)}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(len(messages(receiver, path)) >= len(want) for path, want in expected.items()):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # an early event would show up now
    for path, want in expected.items():
        assert messages(receiver, path) == want, path


def test_registrations_survive_restarts_of_everything(
    system: System, receiver_factory: Any
) -> None:
    receiver: CallbackReceiver = receiver_factory()
    base = f"http://127.0.0.1:{receiver.port}"
    registry, dispatcher = start_registry_and_dispatcher(system, base)
    rooms = ["Durable", "Durable", "Other"]
    made = []
    with httpx.Client(base_url=registry.base_url, headers=AUTH) as client:
        for i, room in enumerate(rooms):
            answer = client.post("/v1/subscriptions", json={"room": room, "url": f"{base}/{i}"})
            assert answer.status_code == 201
            made.append(answer.json())

        def listed() -> list[dict[str, Any]]:
            return list(client.get("/v1/subscriptions").json()["items"])

        public = [{k: v for k, v in m.items() if k != "secret"} for m in made]
        assert listed() == public

        registry.stop(signal.SIGKILL)
        dispatcher.stop(signal.SIGKILL)
        registry.start()
        assert listed() == public

        system.nats.stop()
        deadline = time.monotonic() + 10
        answer = client.get("/v1/subscriptions")
        while answer.status_code != 503 and time.monotonic() < deadline:
            time.sleep(0.1)
            answer = client.get("/v1/subscriptions")
        assert answer.status_code == 503  # not 500: NATS is down
        assert answer.json() == {"detail": "NATS is unavailable"}
        refused = client.post("/v1/subscriptions", json={"room": "Late", "url": f"{base}/late"})
        assert refused.status_code == 503
        system.nats.start()
        registry.wait_ready()
        assert listed() == public
        assert (
            client.get("/v1/subscriptions", params={"room": "Durable"}).json()["items"]
            == public[:2]
        )
        again = client.post("/v1/subscriptions", json={"room": "Durable", "url": f"{base}/0"})
        assert again.status_code == 200
        assert again.json() == public[0]

    dispatcher.start()
    events = [ChatEvent("Durable", "u", "after"), ChatEvent("Other", "u", "x")]
    asyncio.run(publish(system.nats.url, events))
    received = receiver.wait_for(3, timeout=30)
    assert sorted((r.path, parse(r.body)) for r in received) == [
        ("/0", ChatEvent("Durable", "u", "after")),
        ("/1", ChatEvent("Durable", "u", "after")),
        ("/2", ChatEvent("Other", "u", "x")),
    ]
    secrets = {f"/{i}": m["secret"] for i, m in enumerate(made)}
    for r in received:  # signed with the secret of the 201, stored across every restart
        verify_signature(secrets[r.path], r.headers, r.body)


async def test_two_registries_at_once_lose_and_duplicate_nothing(system: System) -> None:
    prefix = "https://hooks.example.com"
    replicas = [system.service("registry", EVENT_CALLBACK_PREFIX=prefix) for _ in range(2)]
    for replica in replicas:
        replica.start(ready=False)
    for replica in replicas:
        replica.wait_ready()
    pairs = [(f"Room {i % 4}", f"{prefix}/hook/{i}") for i in range(24)]

    async def register(client: httpx.AsyncClient, room: str, url: str) -> httpx.Response:
        return await client.post("/v1/subscriptions", json={"room": room, "url": url})

    clients = [httpx.AsyncClient(base_url=r.base_url, headers=AUTH, timeout=30) for r in replicas]
    try:
        # every pair three times on each replica, all at once
        calls = [(c, room, url) for room, url in pairs for c in clients for _ in range(3)]
        answers = await asyncio.gather(*(register(*call) for call in calls))
        by_pair: dict[tuple[str, str], list[httpx.Response]] = {}
        for (_, room, url), answer in zip(calls, answers, strict=True):
            by_pair.setdefault((room, url), []).append(answer)
        for pair, got in by_pair.items():
            codes = sorted(a.status_code for a in got)
            assert codes == [200] * 5 + [201], (pair, [a.text for a in got])
            assert len({a.json()["id"] for a in got}) == 1
            assert sum("secret" in a.json() for a in got) == 1

        ids = {a.json()["id"] for a in answers}
        assert len(ids) == len(pairs)
        for client in clients:  # both replicas list every one once, page by page
            seen: list[str] = []
            cursor = None
            while True:
                params: dict[str, Any] = {"limit": 5}
                if cursor:
                    params["cursor"] = cursor
                page = (await client.get("/v1/subscriptions", params=params)).json()
                seen += [item["id"] for item in page["items"]]
                cursor = page["next"]
                if cursor is None:
                    break
            assert sorted(seen) == sorted(ids)
            for room in {room for room, _ in pairs}:
                page = await client.get("/v1/subscriptions", params={"room": room})
                assert len(page.json()["items"]) == len([p for p in pairs if p[0] == room])

        # deletes on one replica racing re-registrations on the other end consistently
        half = sorted(ids)[: len(ids) // 2]
        deletes = [clients[0].delete(f"/v1/subscriptions/{i}") for i in half]
        assert {d.status_code for d in await asyncio.gather(*deletes)} == {204}
        left = (await clients[1].get("/v1/subscriptions", params={"limit": 100})).json()
        assert sorted(i["id"] for i in left["items"]) == sorted(ids - set(half))
    finally:
        for client in clients:
            await client.aclose()

    nc = await nats.connect(system.nats.url)
    try:
        consumers = {c.name for c in await nc.jetstream().consumers_info(EVENTS_STREAM)}
    finally:
        await nc.close()
    assert consumers == set()  # a registration is no NATS object


def test_refuses_to_start_without_a_token() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env.update(REGISTRY_API_TOKENS=" , ", REGISTRY_PORT=str(free_port()), BIND_HOST="127.0.0.1")
    done = subprocess.run(
        [sys.executable, "-m", "services.registry"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert b"REGISTRY_API_TOKENS is empty" in done.stderr
