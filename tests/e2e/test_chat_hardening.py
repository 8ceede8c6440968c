"""The chat against hostile input (issue 14): odd member tokens, forged `X-Forwarded-For`, floods
of sockets and rooms from one address, foreign origins, look-alike names. A real nats-server and
the chat as a process, once for the module; the events the chat stored are read back from
JetStream. The chat trusts 127.0.0.1 as its proxy, so each test picks its clients' addresses with
`X-Forwarded-For`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import nats
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from services.chat.token import mint
from shared.events import EnterEvent, from_json
from shared.subjects import event_subject
from tests.chat.wsclient import Client
from tests.conftest import Service, System

pytestmark = pytest.mark.e2e

SECRET = "hardening-secret-0123456789-0123456789"
HOST_CONNECTIONS = 3
HOST_ROOMS = 3


@dataclass
class Env:
    system: System
    chat: Service

    async def client(self, forwarded_for: str | None = None, origin: str | None = None) -> Client:
        return await Client.connect(self.chat.port, forwarded_for, origin=origin)

    async def enters(self, room: str, count: int, within_s: float = 10.0) -> list[EnterEvent]:
        """The first `count` `enter` events of `room` in the stream."""
        nc = await nats.connect(self.system.nats.url)
        try:
            sub = await nc.jetstream().subscribe(
                event_subject(room, "enter"), ordered_consumer=True
            )
            found: list[EnterEvent] = []
            while len(found) < count:
                msg = await sub.next_msg(within_s)
                event = from_json(msg.data)
                assert isinstance(event, EnterEvent)
                found.append(event)
            return found
        finally:
            await nc.close()


@pytest.fixture(scope="module")
def env(module_system: System) -> Iterator[Env]:
    chat = module_system.service(
        "chat",
        CHAT_JWT_SECRET=SECRET,
        CHAT_TRUSTED_PROXIES="127.0.0.1, 10.9.0.0/16",
        CHAT_HOST_CONNECTIONS=str(HOST_CONNECTIONS),
        CHAT_HOST_ROOMS_PER_MINUTE=str(HOST_ROOMS),
        CHAT_ALLOWED_ORIGINS="https://chat.example.com, http://localhost:8000",
    )
    chat.start()
    yield Env(module_system, chat)


async def test_a_member_token_no_jwt_library_can_read_is_refused_and_the_socket_stays(
    env: Env,
) -> None:
    c = await env.client("192.0.2.6")
    for odd in ("\ud800", "eyJ\udc80.e30.x", "é.é.é", mint("Ann", "member", SECRET) + "\udfff"):
        await c.send(op="enter", room="Odd tokens", user="x", token=odd, id="odd")
        assert (await c.error("not_allowed"))["id"] == "odd"  # not a dropped connection
    assert (await c.enter("Odd tokens", "x", token=mint("Ann", "member", SECRET)))["user"] == "Ann"
    await c.close()
    assert "Traceback" not in env.chat.log()


async def test_the_host_is_the_rightmost_untrusted_forwarded_address(env: Env) -> None:
    room = "Forwarded"
    clients = [
        await env.client("6.6.6.7, 6.6.6.6"),  # the client wrote 6.6.6.7, our proxy 6.6.6.6
        await env.client("::ffff:6.6.6.6"),
        await env.client("6.6.6.7, 6.6.6.5, 10.9.0.1"),  # through a second proxy of ours
        await env.client("unknown, 2001:DB8::7"),
    ]
    for n, c in enumerate(clients):
        await c.enter(room, f"u{n}")
    hosts = [e.host for e in await env.enters(room, len(clients))]
    assert hosts == ["6.6.6.6", "6.6.6.6", "6.6.6.5", "2001:db8::7"]
    for c in clients:
        await c.close()


@pytest.mark.parametrize("forwarded_for", ["unknown", "6.6.6.6, unknown", "6.6.6.6, 10.9.0.1:x"])
async def test_a_forwarded_for_that_names_nobody_is_refused(env: Env, forwarded_for: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await env.client(forwarded_for)
    assert refused.value.response.status_code == 400
    assert b"X-Forwarded-For" in refused.value.response.body


async def _admitted(env: Env, host: str, room: str, within_s: float = 10.0) -> Client:
    """A client from `host` that entered `room`, once the chat lets one more in."""
    deadline = time.monotonic() + within_s
    while True:
        c = await env.client(host)
        try:
            await c.enter(room, "late")
            return c
        except ConnectionClosed:
            assert time.monotonic() < deadline, "the chat never let the address in again"
            await asyncio.sleep(0.05)


async def test_one_connection_too_many_from_an_address_is_closed_at_once(env: Env) -> None:
    spellings = ["203.0.113.1", "::ffff:203.0.113.1", "6.6.6.6, 203.0.113.1:1234"]
    first = [await env.client(s) for s in spellings]  # one address, however it is written
    for n, c in enumerate(first):
        await c.enter("Crowd", f"u{n}")
    extra = await env.client("203.0.113.1")
    assert await extra.closed_code(within_s=5) == 1008
    assert extra.ws.close_reason is not None and "too many connections" in extra.ws.close_reason
    elsewhere = await env.client("203.0.113.2")  # another address is not held back
    await elsewhere.enter("Crowd", "v")
    await first[0].close()
    again = await _admitted(env, "203.0.113.1", "Crowd")  # room for one again
    for c in [*first[1:], elsewhere, again]:
        await c.close()


async def test_one_room_too_many_from_an_address_is_rate_limited(env: Env) -> None:
    a, b = await env.client("203.0.113.3"), await env.client("203.0.113.3")
    for n in range(HOST_ROOMS):
        await a.enter(f"Spawned {n}", "a")
    await b.send(op="enter", room="Spawned one too many", user="b", id="x")
    assert (await b.error("rate_limited"))["id"] == "x"
    await b.enter("Spawned 0", "b")  # a room that exists may still be entered
    c = await env.client("203.0.113.4")
    await c.enter("Spawned one too many", "c")  # another address may create it
    for client in (a, b, c):
        await client.close()


@pytest.mark.parametrize("origin", ["https://evil.test", "https://chat.example.com.evil.test"])
async def test_a_foreign_origin_is_refused_with_403(env: Env, origin: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await env.client("203.0.113.5", origin=origin)
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize("origin", [None, "https://chat.example.com", "http://localhost:8000"])
async def test_an_allowed_origin_or_none_opens_the_chat(env: Env, origin: str | None) -> None:
    c = await env.client("203.0.113.6", origin=origin)
    await c.enter("Origins", "u")
    await c.close()


LOOK_ALIKES = [
    "\uff41\uff4e\uff4e",
    "\u0430nn",
    "A\u200dNN",
    "\u0391nn",
]  # fullwidth, Cyrillic a, ZWJ, Greek


async def test_names_that_look_like_one_in_use_are_taken(env: Env) -> None:
    room = "Look-alikes"
    ann = await env.client("198.51.100.1")
    await ann.enter(room, "x", token=mint("ann", "member", SECRET))
    bob = await env.client("198.51.100.2")
    await bob.enter(room, "bob")
    spoofer = await env.client("198.51.100.3")
    for alike in LOOK_ALIKES:
        for where in (room, "Elsewhere"):
            await spoofer.send(op="enter", room=where, user=alike, id=alike)
            assert (await spoofer.error("member_taken"))["id"] == alike
    for alike in ("\uff42\uff4f\uff42", "b\u043eb", "B\u200cOB", "BOB"):
        await spoofer.send(op="enter", room=room, user=alike)
        await spoofer.error("name_taken")
    await spoofer.enter("Elsewhere", "\uff42\uff4f\uff42")  # bob is not a member: only his room
    for c in (ann, bob, spoofer):
        await c.close()


@pytest.mark.parametrize(
    ("n", "name"),
    list(enumerate(["\u200b", "ann\u200b", "\u202eann", "an\u2066n", "\u200dann", "a\u00adnn"])),
)
async def test_invisible_and_bidi_control_characters_are_refused_in_names(
    env: Env, n: int, name: str
) -> None:
    c = await env.client(f"198.51.100.{10 + n}")  # an address of its own: its own room budget
    await c.send(op="enter", room="Names", user=name, id=1)
    assert "invisible" in (await c.error("bad_request"))["message"]
    await c.send(op="enter", room=name, user="u", id=2)
    await c.error("bad_request")
    await c.enter("Names", "\u2764\ufe0f")  # an emoji with its variation selector is fine
    await c.close()
