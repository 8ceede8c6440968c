"""The chat's life: clients that vanish, SIGTERM, restarts with bans kept, NATS going away.

One nats-server, registry, dispatcher and chat for the module; clients connect from distinct
loopback addresses (127.0.0.x), which the chat reports as their `host`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from services.chat.token import mint
from shared.events import ChatEvent, CreateEvent, DeleteEvent, EnterEvent, ExitEvent, KickEvent
from tests.chat.wsclient import Client, register, room_events, start_together
from tests.conftest import CallbackReceiver, Service, System

pytestmark = pytest.mark.e2e

# uvicorn ends a gracefully stopped process by re-raising the signal it got
STOPPED = (0, -signal.SIGTERM)
SECRET = "lifecycle-secret-0123456789-0123456789"


@dataclass
class Env:
    system: System
    registry: Service
    chat: Service
    receiver: CallbackReceiver

    def register(self, *rooms: str) -> None:
        for room in rooms:
            register(self.registry.base_url, room, self.receiver.url)

    async def client(self, local_host: str, forwarded_for: str | None = None) -> Client:
        return await Client.connect(self.chat.port, forwarded_for, local_host)


@pytest.fixture(scope="module")
def env(module_system: System) -> Iterator[Env]:
    receiver = CallbackReceiver()
    registry = module_system.service("registry", EVENT_CALLBACK_PREFIX=receiver.url)
    chat = module_system.service(
        "chat",
        CHAT_JWT_SECRET=SECRET,
        CHAT_PING_INTERVAL_S="0.5",
        CHAT_PING_TIMEOUT_S="3",
    )
    start_together(registry, module_system.service("dispatcher"), chat)
    yield Env(module_system, registry, chat, receiver)
    receiver.close()


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(env: Env) -> None:
    room = "Untrusted proxy"
    env.register(room)
    c = await env.client("127.0.0.5", forwarded_for="10.0.0.1")
    await c.enter(room, "u")
    await c.close()
    events = [e for e, _ in await room_events(env.receiver, room, 4)]
    assert events[1] == EnterEvent(room, "u", "127.0.0.5", "", "non-member")


def _raw_websocket_enter(
    port: int, frame: dict[str, str], receive_buffer: int | None = None
) -> socket.socket:
    """A client that opens a websocket, sends one frame, and then never reads nor answers
    a ping again, but keeps its TCP connection open: a vanished laptop."""
    sock = socket.socket()
    if receive_buffer is not None:  # before connecting, so the TCP window stays that small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    payload = json.dumps(frame).encode()
    assert len(payload) < 126
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    return sock


async def test_vanished_client_exits_after_ping_timeout(env: Env) -> None:
    room = "Vanishing"
    env.register(room)
    sock = _raw_websocket_enter(env.chat.port, {"op": "enter", "room": room, "user": "ghost"})
    try:
        events = [e for e, _ in await room_events(env.receiver, room, 4, within_s=20)]
        assert events == [
            CreateEvent(room),
            EnterEvent(room, "ghost", "127.0.0.1", "", "non-member"),
            ExitEvent(room, "ghost"),
            DeleteEvent(room),
        ]
    finally:
        sock.close()


async def test_ban_survives_a_restart_of_the_chat(env: Env) -> None:
    room = "Ban and restart"
    env.register(room)
    mod = await env.client("127.0.0.10")
    eve = await env.client("127.0.0.66")
    await mod.enter(room, "m", token=mint("Mod", "monitor", SECRET))
    await eve.enter(room, "eve")
    await mod.send(op="kick", room=room, to="eve", type="ban")
    await mod.recv_op("kick")
    assert await eve.closed_code() == 4001
    await mod.close()
    events = [e for e, _ in await room_events(env.receiver, room, 7)]
    assert events[3:] == [
        KickEvent(room, "Mod", "eve", "ban"),
        ExitEvent(room, "eve"),
        ExitEvent(room, "Mod"),
        DeleteEvent(room),
    ]

    assert env.chat.stop() in STOPPED
    env.chat.start()
    again = await env.client("127.0.0.66")
    await again.send(op="enter", room="Lobby", user="not eve")
    await again.error("banned")
    other = await env.client("127.0.0.67")
    await other.enter("Lobby", "eve")
    await again.close()
    await other.close()


async def test_sigterm_exits_everyone_before_the_process_ends(env: Env) -> None:
    room = "Closing time"
    env.register(room, "Lobby")
    alice = await env.client("127.0.0.21")
    bob = await env.client("127.0.0.22")
    await alice.enter(room, "alice")
    await bob.enter(room, "bob")
    await bob.enter("Lobby", "bob")
    await bob.send(op="chat", room="Lobby", message="marker")
    await bob.recv_op("chat")
    lobby_before = len(await room_events(env.receiver, "Lobby", 2))

    # SIGTERM: the exits are on JetStream before the process ends
    assert env.chat.stop() in STOPPED
    assert await alice.closed_code() in (1001, 1012)
    assert await bob.closed_code() in (1001, 1012)
    events = [e for e, _ in await room_events(env.receiver, room, 6)]
    assert events[:3] == [
        CreateEvent(room),
        EnterEvent(room, "alice", "127.0.0.21", "", "non-member"),
        EnterEvent(room, "bob", "127.0.0.22", "", "non-member"),
    ]
    assert sorted(events[3:5], key=str) == [ExitEvent(room, "alice"), ExitEvent(room, "bob")]
    assert events[5] == DeleteEvent(room)  # a dynamic room emptied: deleted; Lobby never
    lobby = [e for e, _ in await room_events(env.receiver, "Lobby", lobby_before + 1)]
    assert lobby[lobby_before - 1 :] == [
        ChatEvent("Lobby", "bob", "marker"),
        ExitEvent("Lobby", "bob"),
    ]
    env.chat.start()


async def test_unavailable_when_nats_is_down_and_served_again_after(env: Env) -> None:
    room = "Outage"
    env.register(room)
    c = await env.client("127.0.0.31")
    await c.enter(room, "u")
    env.system.nats.stop()
    try:
        await c.send(op="chat", room=room, message="lost?", id="x")
        error = await c.error("unavailable")
        assert error["id"] == "x"
        await c.send(op="enter", room="Outage 2", user="u")
        await c.error("unavailable")
    finally:
        env.system.nats.start()
    deadline = time.monotonic() + 20
    async with httpx.AsyncClient() as http:  # not blocking: the chat pings this client
        while (await http.get(env.chat.base_url + "/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "chat never reconnected"
            await asyncio.sleep(0.2)
    await c.send(op="chat", room=room, message="back", id="y")
    assert (await c.recv_op("chat"))["id"] == "y"
    await c.close()
    events = [e for e, _ in await room_events(env.receiver, room, 5)]
    assert events == [
        CreateEvent(room),
        EnterEvent(room, "u", "127.0.0.31", "", "non-member"),
        ChatEvent(room, "u", "back"),  # the refused message was never accepted nor sent
        ExitEvent(room, "u"),
        DeleteEvent(room),
    ]


def _close_code(sock: socket.socket) -> int | None:
    """Read the server's frames (unmasked) until its close frame; its status code."""
    buffer = b""

    def take(n: int) -> bytes:
        nonlocal buffer
        while len(buffer) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError
            buffer += chunk
        out, buffer = buffer[:n], buffer[n:]
        return out

    sock.settimeout(10)
    try:
        while True:
            first, second = take(2)
            size = second & 0x7F
            if size == 126:
                size = int.from_bytes(take(2), "big")
            elif size == 127:
                size = int.from_bytes(take(8), "big")
            payload = take(size)
            if first & 0x0F == 0x8:
                return int.from_bytes(payload[:2], "big")
    except (EOFError, OSError):
        return None


async def test_a_client_too_slow_to_read_is_dropped_not_buffered(env: Env) -> None:
    # its own chat: a send budget of 1 frame (512 bytes unsent), pings too far apart to matter,
    # and 60 kB messages, so the kernel's socket buffers (up to 4 MiB) fill in a few hundred
    chat = env.system.service(
        "chat",
        CHAT_JWT_SECRET=SECRET,
        CHAT_SEND_QUEUE="1",
        CHAT_TEXT_MAX="60000",
        CHAT_FRAME_MAX="65536",
    )
    chat.start()
    room = "Slow reader"  # not registered: thousands of chats would hold up the dispatcher
    sock: socket.socket | None = None
    try:
        sock = _raw_websocket_enter(
            chat.port, {"op": "enter", "room": room, "user": "slow"}, receive_buffer=4096
        )
        talker = await Client.connect(chat.port, None, "127.0.0.8")
        await talker.enter(room, "talker")
        dropped = False
        for _ in range(500):  # up to 30 MB of frames for the reader that does not read
            await talker.send(op="chat", room=room, message="x" * 60000)
            frame = await talker.recv()
            while frame["op"] != "chat":
                if frame == {"op": "exit", "room": room, "user": "slow"}:
                    dropped = True
                frame = await talker.recv()
            if dropped:
                break
        assert dropped, "the reader that does not read was never dropped"
        assert _close_code(sock) == 1008  # "client too slow", after the frames it was sent
        await talker.close()
    finally:
        if sock is not None:
            sock.close()
        chat.stop()
