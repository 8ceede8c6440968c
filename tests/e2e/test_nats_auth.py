"""NATS locked down (issue 14 #4): nats-server runs with deploy/k8s/base/nats/auth.conf, each
service connects as its own user and does its whole job with only its rights, and a client
holding the chat's credentials (a compromised chat) can neither read a registration's secret nor
publish anything but events.

A refusal is read from the server itself: nats-server answers a publish or subscription it
forbids with a permissions violation naming the subject, which nats-py hands to `error_cb`."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.errors
import pytest
import websockets
from nats.aio.client import Client

from shared.bus import SUBSCRIPTIONS_BUCKET, Bus, connect
from shared.codec import parse
from shared.events import ChatEvent, CreateEvent, DeleteEvent, EnterEvent, ExitEvent
from shared.settings import CommonSettings
from shared.subjects import EVENTS_STREAM, event_subject
from shared.subscriptions import create_subscription
from tests.conftest import API_TOKEN, NatsServer, System
from tests.e2e.test_walking_skeleton import recv_op

pytestmark = pytest.mark.e2e

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
SUBSCRIPTIONS_STREAM = f"KV_{SUBSCRIPTIONS_BUCKET}"


@pytest.fixture
def auth_nats(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "jetstream", auth=True)
    server.start()
    yield server
    server.stop(signal.SIGKILL)


@pytest.fixture
def auth_system(auth_nats: NatsServer, tmp_path: Path) -> Iterator[System]:
    system = System(auth_nats, tmp_path)
    yield system
    for svc in system.services:
        svc.stop(signal.SIGKILL)


class Tenant:
    """A bare nats-py connection as one user, with replies on that user's inbox, keeping the
    permission violations the server reports."""

    def __init__(self) -> None:
        self.nc = Client()
        self.refusals: asyncio.Queue[str] = asyncio.Queue()
        self.seen: list[str] = []

    async def open(self, server: NatsServer, user: str) -> Tenant:
        async def on_error(exc: Exception) -> None:
            await self.refusals.put(str(exc).lower())

        found = server.credentials(user)
        await self.nc.connect(
            server.url,
            user=found["NATS_USER"],
            password=found["NATS_PASSWORD"],
            inbox_prefix=f"_INBOX.{user}",
            error_cb=on_error,
            allow_reconnect=False,
        )
        return self

    async def refused(self, kind: str, subject: str) -> None:
        """Wait for the server's refusal of a publish or subscription to `subject`."""
        wanted = f'permissions violation for {kind} to "{subject.lower()}"'
        async with asyncio.timeout(10):
            while not any(wanted in seen for seen in self.seen):
                self.seen.append(await self.refusals.get())

    async def publish_refused(self, subject: str, body: bytes = b"") -> None:
        await self.nc.publish(subject, body, reply=self.nc.new_inbox())
        await self.nc.flush()
        await self.refused("publish", subject)

    async def subscribe_refused(self, subject: str) -> None:
        await self.nc.subscribe(subject)
        await self.nc.flush()
        await self.refused("subscription", subject)


@pytest.fixture
async def tenants() -> AsyncIterator[list[Tenant]]:
    made: list[Tenant] = []
    yield made
    for tenant in made:
        await tenant.nc.close()


async def as_user(server: NatsServer, user: str, made: list[Tenant]) -> Tenant:
    tenant = await Tenant().open(server, user)
    made.append(tenant)
    return tenant


async def service_bus(server: NatsServer, user: str) -> Bus:
    """The project's own connection, as service `user` connects."""
    found = server.credentials(user)
    settings = CommonSettings(
        nats_url=server.url, nats_user=found["NATS_USER"], nats_password=found["NATS_PASSWORD"]
    )
    return await asyncio.wait_for(connect(settings, user), 60)


def violations(server: NatsServer) -> list[str]:
    return [line for line in server.log_path.read_text().splitlines() if "Violation" in line]


# --- who gets in -------------------------------------------------------------------------------


async def test_anonymous_and_wrong_password_are_refused(auth_nats: NatsServer) -> None:
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(auth_nats.url, allow_reconnect=False, max_reconnect_attempts=0)
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(
            auth_nats.url,
            user="chat",
            password=auth_nats.passwords["NATS_REGISTRY_PASSWORD"],
            allow_reconnect=False,
            max_reconnect_attempts=0,
        )


# --- each user does its job ----------------------------------------------------------------------


async def test_the_services_do_their_whole_job_each_as_its_own_user(
    auth_system: System, receiver_factory: Any
) -> None:
    """Register, chat, the callback gets every event; a callback answering 500 is ended (the
    dispatcher ends it: entry, index, lease, position, why) and its attempts are listed; a
    registration with `since` replays the room; listing and deleting work. Not one request of
    any service was refused along the way."""
    healthy = receiver_factory()
    failing = receiver_factory(status=500)
    replayed = receiver_factory()
    registry, _, chat = auth_system.start_all(f"{healthy.url} {failing.url} {replayed.url}")
    room = "Locked Room"
    async with httpx.AsyncClient(base_url=registry.base_url, headers=AUTH) as api:
        made = [
            await api.post("/v1/subscriptions", json={"room": room, "url": url})
            for url in (healthy.url, failing.url)
        ]
        assert [r.status_code for r in made] == [201, 201], [r.text for r in made]
        kept, doomed = (r.json() for r in made)

        ws_url = f"ws://127.0.0.1:{chat.port}/ws"
        async with websockets.connect(ws_url) as alice:
            await alice.send(json.dumps({"op": "enter", "room": room, "user": "alice"}))
            await recv_op(alice, "entered")
            await alice.send(json.dumps({"op": "chat", "room": room, "message": "hello"}))
            await recv_op(alice, "chat")
            await alice.send(json.dumps({"op": "exit", "room": room}))
            await recv_op(alice, "exit")

        everything = [
            CreateEvent(room),
            EnterEvent(room, "alice", "127.0.0.1", "", "non-member"),
            ChatEvent(room, "alice", "hello"),
            ExitEvent(room, "alice"),
            DeleteEvent(room),
        ]
        assert [parse(r.body) for r in healthy.wait_for(5)] == everything
        for _ in range(300):  # the dispatcher ends it after the 500, then records why
            gone = await api.get(f"/v1/subscriptions/{doomed['id']}")
            if gone.json().get("detail") == "ended":
                break
            await asyncio.sleep(0.1)
        assert gone.status_code == 404 and gone.json()["status"] == 500
        attempts = (await api.get(f"/v1/subscriptions/{doomed['id']}/attempts")).json()
        assert [item["status"] for item in attempts["items"]] == [500]

        since = {"room": room, "url": replayed.url, "since": "2000-01-01T00:00:00Z"}
        again = await api.post("/v1/subscriptions", json=since)
        assert again.status_code == 201, again.text
        assert [parse(r.body) for r in replayed.wait_for(5)] == everything

        listed = (await api.get("/v1/subscriptions", params={"room": room})).json()["items"]
        assert [item["id"] for item in listed] == [kept["id"], again.json()["id"]]
        assert (await api.delete(f"/v1/subscriptions/{kept['id']}")).status_code == 204
    assert violations(auth_system.nats) == []


# --- what the chat's credentials cannot do ---------------------------------------------------


async def test_the_chat_user_cannot_read_registrations_or_their_secrets(
    auth_nats: NatsServer, tenants: list[Tenant]
) -> None:
    registry = await service_bus(auth_nats, "registry")
    try:
        sub, _ = await create_subscription(registry, "Secret Room", "http://127.0.0.1:9/cb")
    finally:
        await registry.close()
    chat = await as_user(auth_nats, "chat", tenants)
    key = f"$KV.{SUBSCRIPTIONS_BUCKET}.{sub.id}"
    got: list[bytes] = []

    async def keep(msg: Any) -> None:
        got.append(msg.data)

    await chat.nc.subscribe(chat.nc.new_inbox() + ".>", cb=keep)

    # The KV API (stream info, then a direct get of the key) and every other way in.
    await chat.publish_refused(f"$JS.API.STREAM.INFO.{SUBSCRIPTIONS_STREAM}")
    await chat.publish_refused(f"$JS.API.DIRECT.GET.{SUBSCRIPTIONS_STREAM}.{key}")
    direct = json.dumps({"last_by_subj": key}).encode()
    await chat.publish_refused(f"$JS.API.DIRECT.GET.{SUBSCRIPTIONS_STREAM}", direct)
    await chat.publish_refused(f"$JS.API.STREAM.MSG.GET.{SUBSCRIPTIONS_STREAM}", b'{"seq": 1}')
    consumer = {
        "stream_name": SUBSCRIPTIONS_STREAM,
        "config": {"deliver_subject": chat.nc.new_inbox(), "ack_policy": "none"},
    }
    body = json.dumps(consumer).encode()
    await chat.publish_refused(f"$JS.API.CONSUMER.CREATE.{SUBSCRIPTIONS_STREAM}", body)
    await chat.publish_refused(f"$JS.API.CONSUMER.CREATE.{SUBSCRIPTIONS_STREAM}.x.{key}", body)
    # Copying the bucket into a stream it may read (JetStream sources): no updates at all.
    sourced = {"name": EVENTS_STREAM, "sources": [{"name": SUBSCRIPTIONS_STREAM}]}
    await chat.publish_refused(
        f"$JS.API.STREAM.UPDATE.{EVENTS_STREAM}", json.dumps(sourced).encode()
    )
    await chat.publish_refused("$JS.API.STREAM.UPDATE.KV_volano_chat_bans")
    await chat.publish_refused("$JS.API.STREAM.CREATE.STOLEN")
    # Listening in: to KV writes as they happen, or to another service's replies.
    await chat.subscribe_refused(f"$KV.{SUBSCRIPTIONS_BUCKET}.>")
    await chat.subscribe_refused("_INBOX.>")
    await chat.subscribe_refused("_INBOX.registry.>")
    await chat.subscribe_refused("_INBOX.dispatcher.>")
    await chat.subscribe_refused(">")

    # And through the client library, as a compromised chat would try it.
    js = chat.nc.jetstream(timeout=1)
    with pytest.raises(nats.errors.TimeoutError):
        await js.key_value(SUBSCRIPTIONS_BUCKET)
    with pytest.raises(nats.errors.TimeoutError):
        await js.get_msg(SUBSCRIPTIONS_STREAM, seq=1, direct=True)
    await chat.nc.flush()
    assert not any(sub.secret.encode() in data for data in got)


async def test_the_chat_user_publishes_events_and_nothing_else(
    auth_nats: NatsServer, tenants: list[Tenant]
) -> None:
    chat_bus = await service_bus(auth_nats, "chat")  # the chat's own set-up, as the chat
    try:
        ack = await chat_bus.js.publish(event_subject("Lobby", "chat"), b"{}")
        assert ack.stream == EVENTS_STREAM
    finally:
        await chat_bus.close()
    chat = await as_user(auth_nats, "chat", tenants)
    await chat.publish_refused("volano.attempts.sub_x")
    await chat.publish_refused(f"$KV.{SUBSCRIPTIONS_BUCKET}.sub_forged", b"{}")
    await chat.publish_refused("$KV.volano_positions.p0.mark", b"{}")
    await chat.publish_refused("$KV.volano_registry.lock.sub_x", b"{}")
    await chat.publish_refused(f"$JS.API.STREAM.DELETE.{EVENTS_STREAM}")
    await chat.publish_refused(f"$JS.API.STREAM.PURGE.{EVENTS_STREAM}")
    await chat.publish_refused("anything.else")


async def test_the_registry_and_the_dispatcher_cannot_publish_events(
    auth_nats: NatsServer, tenants: list[Tenant]
) -> None:
    for user in ("registry", "dispatcher"):
        tenant = await as_user(auth_nats, user, tenants)
        await tenant.publish_refused(event_subject("Lobby", "chat"), b"{}")
        await tenant.subscribe_refused("volano.events.>")
        await tenant.subscribe_refused("_INBOX.chat.>")
    registry = tenants[0]
    await registry.publish_refused("volano.attempts.sub_x")
