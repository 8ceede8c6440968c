"""The chat protocol of docs/websocket.md against a live chat service, and the exact XML each op
produces at a real callback (docs/callbacks.md). nats-server, registry, dispatcher and chat run as
processes, once for the module; each test uses rooms of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from services.chat.token import mint
from shared.events import ChatEvent, CreateEvent, DeleteEvent, EnterEvent, ExitEvent, KickEvent
from tests.chat.wsclient import Client, register, room_events, start_together
from tests.conftest import CallbackReceiver, Service, System

pytestmark = pytest.mark.e2e

SECRET = "test-jwt-secret-for-the-chat-service-0123456789"


@dataclass
class Env:
    registry: Service
    chat: Service
    receiver: CallbackReceiver

    def register(self, *rooms: str) -> None:
        for room in rooms:
            register(self.registry.base_url, room, self.receiver.url)

    async def client(self, host: str | None = None) -> Client:
        return await Client.connect(self.chat.port, forwarded_for=host)


@pytest.fixture(scope="module")
def env(module_system: System) -> Iterator[Env]:
    receiver = CallbackReceiver()
    registry = module_system.service("registry", EVENT_CALLBACK_PREFIX=receiver.url)
    chat = module_system.service(
        "chat",
        CHAT_JWT_SECRET=SECRET,
        CHAT_ROOMS="Lobby,Hall",
        CHAT_ROOM_LIMIT="3",
        CHAT_TRUSTED_PROXIES="127.0.0.1/32",
    )
    start_together(registry, module_system.service("dispatcher"), chat)
    yield Env(registry, chat, receiver)
    receiver.close()


def token(user: str, role: Any = "member", ttl_s: float | None = 3600) -> str:
    return mint(user, role, SECRET, ttl_s)


async def test_enter_chat_ring_exit(env: Env) -> None:
    room = "Ops <&> room"
    env.register(room)
    alice = await env.client("10.1.1.1")
    # the rightmost X-Forwarded-For address that is not a trusted proxy (127.0.0.1) counts
    bob = await env.client("10.0.0.1, 2001:db8::7")
    entered = await alice.enter(room, "  alice ", profile="<i>hi</i> & bye", id="e1")
    assert entered == {
        "op": "entered",
        "room": room,
        "user": "alice",
        "members": [{"user": "alice", "profile": "<i>hi</i> & bye", "type": "non-member"}],
        "history": [],
        "id": "e1",
    }
    entered = await bob.enter(room, "bob", id=2)
    assert entered["id"] == 2
    assert [m["user"] for m in entered["members"]] == ["alice", "bob"]
    assert await alice.recv() == {
        "op": "enter",
        "room": room,
        "user": "bob",
        "profile": "",
        "type": "non-member",
    }

    await alice.send(op="chat", room=room, message="a < b & 'c'", id=3)
    assert await alice.recv() == {
        "op": "chat",
        "room": room,
        "user": "alice",
        "message": "a < b & 'c'",
        "id": 3,
    }
    assert await bob.recv() == {
        "op": "chat",
        "room": room,
        "user": "alice",
        "message": "a < b & 'c'",
    }

    await alice.send(op="ring", room=room, to="bob", id=4)
    assert await bob.recv() == {"op": "ring", "room": room, "from": "alice"}
    assert await alice.quiet() == []  # a ring goes to its target only

    await bob.send(op="exit", room=room, id=5)
    assert await bob.recv() == {"op": "exit", "room": room, "user": "bob", "id": 5}
    assert await alice.recv() == {"op": "exit", "room": room, "user": "bob"}
    await alice.close()  # a closed connection exits its rooms; the room's delete follows
    await bob.close()

    events = await room_events(env.receiver, room, 8)
    bodies = [body for _, body in events]
    r = "Ops &lt;&amp;&gt; room"
    assert bodies == [
        f"<create><room>{r}</room></create>\n",
        f'<enter type="non-member"><room>{r}</room><user>alice</user><host>10.1.1.1</host>'
        "<profile>&lt;i&gt;hi&lt;/i&gt; &amp; bye</profile></enter>\n",
        f'<enter type="non-member"><room>{r}</room><user>bob</user><host>2001:db8::7</host>'
        "<profile></profile></enter>\n",
        f"<chat><room>{r}</room><user>alice</user><message>a &lt; b &amp; &apos;c&apos;</message>"
        "</chat>\n",
        f"<ring><room>{r}</room><from>alice</from><to>bob</to></ring>\n",
        f"<exit><room>{r}</room><user>bob</user></exit>\n",
        f"<exit><room>{r}</room><user>alice</user></exit>\n",
        f"<delete><room>{r}</room></delete>\n",
    ]


async def test_untrusted_peer_forwarded_for_is_ignored_and_permanent_rooms_have_no_create(
    env: Env,
) -> None:
    # The peer (127.0.0.1) is trusted here, so this checks the permanent room; the untrusted
    # case is covered by the unit tests of services/chat/hosts.py and the lifecycle module.
    env.register("Hall")
    carol = await env.client()
    await carol.enter("Hall", "carol")
    await carol.send(op="exit", room="Hall")
    await carol.recv_op("exit")
    await carol.send(op="chat", room="Hall", message="still here?")
    await carol.error("not_in_room")
    await carol.close()
    events = [e for e, _ in await room_events(env.receiver, "Hall", 2)]
    assert events == [
        EnterEvent("Hall", "carol", "127.0.0.1", "", "non-member"),
        ExitEvent("Hall", "carol"),
    ]


async def test_member_tokens(env: Env) -> None:
    room = "Members"
    env.register(room)
    mod = await env.client("10.2.0.1")
    entered = await mod.enter(room, "ignored", token=token("Moderator", "monitor"), profile="mod")
    assert entered["user"] == "Moderator"
    assert entered["members"] == [{"user": "Moderator", "profile": "mod", "type": "member"}]

    squatter = await env.client("10.2.0.2")
    for name in ("Moderator", "moderator", " MODERATOR "):
        await squatter.send(op="enter", room="Elsewhere", user=name, id=name)
        assert (await squatter.error("member_taken"))["id"] == name
    await squatter.send(op="enter", room=room, user="x", token="not.a.jwt")
    await squatter.error("not_allowed")
    forged = mint("x", "member", "another-key-of-32-bytes-or-more-000")
    await squatter.send(op="enter", room=room, user="x", token=forged)
    await squatter.error("not_allowed")
    await squatter.send(op="enter", room=room, token=token("Late", ttl_s=-10))
    assert "expired" in (await squatter.error("not_allowed"))["message"]
    await squatter.send(op="enter", room=room, token=token("Member2"))
    assert (await squatter.recv_op("entered"))["user"] == "Member2"

    await mod.close()
    await squatter.close()
    events = [e for e, _ in await room_events(env.receiver, room, 6)]
    assert events[:3] == [
        CreateEvent(room),
        EnterEvent(room, "Moderator", "10.2.0.1", "mod", "member"),
        EnterEvent(room, "Member2", "10.2.0.2", "", "member"),
    ]


async def test_kick_remove(env: Env) -> None:
    room = "Kick remove"
    env.register(room)
    mod = await env.client("10.3.0.1")
    bob = await env.client("10.3.0.2")
    await mod.enter(room, "m", token=token("Mod3", "admin"))
    await bob.enter(room, "bob")
    await mod.recv_op("enter")
    await mod.send(op="kick", room=room, to="bob", type="remove", id="k")
    frame = {"op": "kick", "room": room, "from": "Mod3", "to": "bob", "type": "remove"}
    assert await mod.recv() == {**frame, "id": "k"}
    assert await bob.recv() == frame
    assert await mod.quiet() == []  # no exit follows a remove
    await bob.send(op="chat", room=room, message="hello?")
    await bob.error("not_in_room")  # out of the room, but still connected
    await bob.enter(room, "bob")  # and may come back
    await mod.send(op="chat", room=room, message="marker")
    await mod.recv_op("chat")

    events = await room_events(env.receiver, room, 6)
    assert [e for e, _ in events] == [
        CreateEvent(room),
        EnterEvent(room, "Mod3", "10.3.0.1", "", "member"),
        EnterEvent(room, "bob", "10.3.0.2", "", "non-member"),
        KickEvent(room, "Mod3", "bob", "remove"),
        EnterEvent(room, "bob", "10.3.0.2", "", "non-member"),
        ChatEvent(room, "Mod3", "marker"),
    ]
    assert events[3][1] == (
        f'<kick type="remove"><room>{room}</room><from>Mod3</from><to>bob</to></kick>\n'
    )
    await mod.close()
    await bob.close()


async def test_kick_disconnect_closes_every_connection_and_exits_every_room(env: Env) -> None:
    room, other = "Kick disconnect", "Kick disconnect elsewhere"
    env.register(room, other)
    mod = await env.client("10.4.0.1")
    bob1 = await env.client("10.4.0.2")
    bob2 = await env.client("10.4.0.3")
    await mod.enter(room, "m", token=token("Mod4", "monitor"))
    await bob1.enter(room, "x", token=token("Bob4"))
    await bob2.enter(other, "x", token=token("Bob4"))  # the same member, a second connection
    await mod.recv_op("enter")
    await mod.send(op="kick", room=room, to="Bob4", type="disconnect")
    frame = {"op": "kick", "room": room, "from": "Mod4", "to": "Bob4", "type": "disconnect"}
    assert await bob1.recv() == frame
    assert await mod.recv() == frame
    assert await mod.recv() == {"op": "exit", "room": room, "user": "Bob4"}
    assert await bob1.closed_code() == 4001
    assert await bob2.closed_code() == 4001
    await mod.send(op="chat", room=room, message="marker")
    await mod.recv_op("chat")

    events = await room_events(env.receiver, room, 6)
    assert [e for e, _ in events] == [
        CreateEvent(room),
        EnterEvent(room, "Mod4", "10.4.0.1", "", "member"),
        EnterEvent(room, "Bob4", "10.4.0.2", "", "member"),
        KickEvent(room, "Mod4", "Bob4", "disconnect"),
        ExitEvent(room, "Bob4"),
        ChatEvent(room, "Mod4", "marker"),
    ]
    assert events[3][1] == (
        f'<kick type="disconnect"><room>{room}</room><from>Mod4</from><to>Bob4</to></kick>\n'
    )
    # the other room, emptied by the disconnect, is deleted at once
    assert [e for e, _ in await room_events(env.receiver, other, 4)] == [
        CreateEvent(other),
        EnterEvent(other, "Bob4", "10.4.0.3", "", "member"),
        ExitEvent(other, "Bob4"),
        DeleteEvent(other),
    ]
    await mod.close()


async def test_kick_ban_bars_host_and_member_name(env: Env) -> None:
    room = "Kick ban"
    env.register(room)
    mod = await env.client("10.5.0.1")
    eve = await env.client("10.5.0.66")
    mallory = await env.client("10.5.0.77")
    await mod.enter(room, "m", token=token("Mod5", "monitor"))
    await eve.enter(room, "eve")
    await mallory.enter(room, "x", token=token("Mallory"))
    await mod.send(op="kick", room=room, to="eve", type="ban", id=1)
    assert (await mod.recv_op("kick")) == {
        "op": "kick",
        "room": room,
        "from": "Mod5",
        "to": "eve",
        "type": "ban",
        "id": 1,
    }
    assert await eve.closed_code() == 4001
    await mod.send(op="kick", room=room, to="Mallory", type="ban")
    await mod.recv_op("kick")
    assert await mallory.closed_code() == 4001

    again = await env.client("10.5.0.66")  # the host is barred, whatever the name or room
    await again.send(op="enter", room="Lobby", user="eve2", id="b")
    banned = await again.error("banned")
    assert banned["id"] == "b" and "minute" in banned["message"]
    elsewhere = await env.client("10.5.0.99")  # the member name is barred from any host
    await elsewhere.send(op="enter", room="Lobby", token=token("Mallory"))
    await elsewhere.error("banned")
    await elsewhere.enter("Lobby", "eve")  # another host with a non-member name may enter
    staff = await env.client("10.5.0.66")  # staff are not held by a host ban
    await staff.enter("Lobby", "x", token=token("Admin5", "admin"))

    await mod.send(op="chat", room=room, message="marker")
    await mod.recv_op("chat")
    events = await room_events(env.receiver, room, 9)
    assert [e for e, _ in events][4:] == [
        KickEvent(room, "Mod5", "eve", "ban"),
        ExitEvent(room, "eve"),
        KickEvent(room, "Mod5", "Mallory", "ban"),
        ExitEvent(room, "Mallory"),
        ChatEvent(room, "Mod5", "marker"),
    ]
    assert events[4][1] == (
        f'<kick type="ban"><room>{room}</room><from>Mod5</from><to>eve</to></kick>\n'
    )
    for c in (mod, again, elsewhere, staff):
        await c.close()


async def test_kick_refusals(env: Env) -> None:
    room = "Kick refusals"
    user = await env.client("10.6.0.1")
    mod = await env.client("10.6.0.2")
    admin = await env.client("10.6.0.3")
    await user.enter(room, "user", token=token("Plain"))
    await mod.enter(room, "x", token=token("Mod6", "monitor"))
    await admin.enter(room, "x", token=token("Adm6", "admin"))
    await user.quiet()
    await user.send(op="kick", room=room, to="Mod6", type="remove", id=1)
    assert "monitors and admins" in (await user.error("not_allowed"))["message"]
    await mod.quiet()
    for target in ("Adm6", "Mod6"):
        await mod.send(op="kick", room=room, to=target, type="ban")
        await mod.error("not_allowed")
    await admin.quiet()
    await admin.send(op="kick", room=room, to="Mod6", type="disconnect")
    await admin.error("not_allowed")
    await admin.send(op="kick", room=room, to="nobody", type="remove")
    await admin.error("not_in_room")
    await admin.send(op="kick", room="Not mine", to="Plain", type="remove")
    await admin.error("not_in_room")
    await admin.send(op="kick", room=room, to="Plain", type="shove")
    await admin.error("bad_request")
    for c in (user, mod, admin):
        await c.close()


async def test_error_codes(env: Env) -> None:
    c = await env.client("10.7.0.1")
    bad = [
        "not json",
        "[1, 2]",
        '"a string"',
        "{}",
        '{"op": 5}',
        '{"op": "dance"}',
        '{"op": "enter", "room": "R"}',
        '{"op": "enter", "room": 7, "user": "u"}',
        '{"op": "enter", "room": "R", "user": ["u"]}',
        '{"op": "enter", "room": "R", "user": "a\\u0007b"}',
        '{"op": "enter", "room": "R\\u0000", "user": "u"}',
        '{"op": "enter", "room": "   ", "user": "u"}',
        '{"op": "enter", "room": "R", "user": "u", "profile": 3}',
        '{"op": "chat", "room": "R", "message": null}',
        '{"op": "kick", "room": "R", "to": "u", "type": true}',
        '{"op": "exit", "room": "R", "id": 1.5}',
        '{"op": "exit", "room": "R", "id": [1]}',
    ]
    for text in bad:
        await c.ws.send(text)
        await c.error("bad_request")
    await c.ws.send(b'{"op": "exit", "room": "R"}')  # binary frames are refused
    await c.error("bad_request")
    await c.send(op="dance", id="d")
    assert (await c.error("bad_request"))["id"] == "d"

    too_long = [
        {"op": "enter", "room": "R", "user": "u" * 21},
        {"op": "enter", "room": "r" * 101, "user": "u"},
        {"op": "enter", "room": "R", "user": "u", "profile": "p" * 401},
        {"op": "chat", "room": "R", "message": "m" * 401},
    ]
    for frame in too_long:
        await c.send(**frame, id="t")
        assert (await c.error("too_long"))["id"] == "t"
    await c.ws.send('{"op": "chat", "room": "R", "message": "' + "x" * 5000 + '"}')
    await c.error("too_long")  # over the frame cap
    await c.enter("r" * 100, "u" * 20, profile="p" * 400)  # the limits themselves are fine
    await c.send(op="chat", room="r" * 100, message="m" * 400)
    await c.recv_op("chat")

    await c.send(op="chat", room="Nowhere", message="hi", id=9)
    assert (await c.error("not_in_room"))["id"] == 9
    await c.send(op="ring", room="r" * 100, to="ghost")
    await c.error("not_in_room")
    await c.send(op="exit", room="Nowhere")
    await c.error("not_in_room")
    await c.send(op="enter", room="r" * 100, user="again")
    await c.error("name_taken")  # this connection is in that room already
    d = await env.client("10.7.0.2")
    await d.send(op="enter", room="r" * 100, user="u" * 20)
    await d.error("name_taken")
    await c.close()
    await d.close()


async def test_room_limit(env: Env) -> None:
    room = "Small room"
    clients = [await env.client(f"10.8.0.{i}") for i in range(4)]
    for i, c in enumerate(clients[:3]):
        await c.enter(room, f"u{i}")
    await clients[3].send(op="enter", room=room, user="u3", id="full")
    error = await clients[3].error("room_full")
    assert error["id"] == "full" and "3" in error["message"]
    await clients[0].send(op="exit", room=room)
    await clients[0].recv_op("exit")
    await clients[3].enter(room, "u3")
    for c in clients:
        await c.close()


async def test_no_such_room_and_flood_control(module_system: System) -> None:
    """A second chat process on the same NATS: fixed rooms only, flood control on."""
    chat = module_system.service(
        "chat", CHAT_DYNAMIC_ROOMS="false", CHAT_RATE_LIMIT="1", CHAT_RATE_BURST="5"
    )
    chat.start()
    c = await Client.connect(chat.port)
    await c.send(op="enter", room="Made up", user="u", id=1)
    assert (await c.error("no_such_room"))["id"] == 1
    await c.enter("Lobby", "flooder")
    for n in range(40):
        await c.send(op="chat", room="Lobby", message=f"m{n}", id=n)
    frames = [await c.recv() for _ in range(40)]
    limited = [f for f in frames if f["op"] == "error"]
    accepted = [f for f in frames if f["op"] == "chat"]
    assert len(limited) + len(accepted) == 40
    assert limited and all(f["code"] == "rate_limited" for f in limited)
    assert len(accepted) >= 3  # the burst (less the two enters) gets through
    assert all(f.get("id") in range(40) for f in limited)  # ids are echoed on refusals too
    await asyncio.sleep(1.2)  # the bucket refills: the same connection is served again
    await c.send(op="chat", room="Lobby", message="calm now")
    assert (await c.recv_op("chat"))["message"] == "calm now"
    await c.close()
    chat.stop()
