"""The chat against hostile input (issue 14): odd member tokens, forged `X-Forwarded-For`, floods
of sockets and rooms from one address, foreign origins, look-alike names. A real nats-server and
the chat as a process, once for the module; the events the chat stored are read back from
JetStream. The chat trusts 127.0.0.1 as its proxy, so each test picks its clients' addresses with
`X-Forwarded-For`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import nats
import pytest
from websockets.exceptions import InvalidStatus

from services.chat.token import mint
from shared.events import EnterEvent, from_json
from shared.subjects import event_subject
from tests.chat.wsclient import Client
from tests.conftest import Service, System

pytestmark = pytest.mark.e2e

SECRET = "hardening-secret-0123456789-0123456789"


@dataclass
class Env:
    system: System
    chat: Service

    async def client(self, forwarded_for: str | None = None) -> Client:
        return await Client.connect(self.chat.port, forwarded_for)

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
