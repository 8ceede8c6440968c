"""History and recovery (docs/websocket.md) with real parts: nats-server with its users (the chat
reads with only its own rights), chat replicas as processes, real websockets.

- `entered` carries the room's last 50 chats, each with the time the stream stored it; a
  replica started after them has the same history (from the room's snapshot);
- a client whose connection dropped enters again on another replica with `since` and gets
  exactly what it missed, in order, then `entered`;
- events the stream no longer holds are a `gap`.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import pytest

from services.chat.snapshots import ROOMS_BUCKET, decode
from shared.subjects import EVENTS_STREAM, room_token
from tests.chat.wsclient import Client, start_together
from tests.conftest import NatsServer, Service, System

pytestmark = pytest.mark.e2e

ENV = {"CHAT_HOST_CONNECTIONS": "0", "CHAT_HOST_ROOMS_PER_MINUTE": "0"}


@pytest.fixture
def auth_nats(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "jetstream", auth=True)
    server.start()
    yield server
    server.stop(signal.SIGKILL)


@dataclass
class Chats:
    system: System
    replicas: list[Service]

    async def client(self, replica: int) -> Client:
        return await Client.connect(self.replicas[replica].port)

    def start(self, **env: str) -> Service:
        chat = self.system.service("chat", **ENV, **env)
        chat.start()
        self.replicas.append(chat)
        return chat

    async def admin(self) -> Any:
        found = self.system.nats.credentials("admin")
        return await nats.connect(
            self.system.nats.url, user=found["NATS_USER"], password=found["NATS_PASSWORD"]
        )


@pytest.fixture
async def chats(auth_nats: NatsServer, tmp_path: Path) -> AsyncIterator[Chats]:
    system = System(auth_nats, tmp_path)
    replicas = [system.service("chat", **ENV) for _ in range(2)]
    start_together(*replicas)
    yield Chats(system, replicas)
    for svc in system.services:
        svc.stop(signal.SIGKILL)


async def say(client: Client, room: str, messages: list[str]) -> list[dict[str, Any]]:
    """Each message, once its copy came back: the frames with their `seq`."""
    said = []
    for message in messages:
        await client.send(op="chat", room=room, message=message)
        frame = await client.recv_op("chat")
        said.append({**frame, "seq": client.seqs[room]})
    return said


async def until_saved(chats: Chats, room: str, history: int, within_s: float = 20.0) -> None:
    """Until the room's snapshot holds `history` chats."""
    nc = await chats.admin()
    try:
        kv = await nc.jetstream().key_value(ROOMS_BUCKET)
        deadline = time.monotonic() + within_s
        while True:
            try:
                if len(decode((await kv.get(room_token(room))).value or b"")[3]) == history:
                    return
            except nats.js.errors.KeyNotFoundError:
                pass
            assert time.monotonic() < deadline, "the room's snapshot was never saved"
            await asyncio.sleep(0.1)
    finally:
        await nc.close()


async def test_entered_carries_the_last_50_chats_on_every_replica(chats: Chats) -> None:
    room = "Tea room"
    started = datetime.now().astimezone()
    ann = await chats.client(0)
    await ann.enter(room, "ann")
    said = await say(ann, room, [f"message {i}" for i in range(60)])
    bob = await chats.client(1)
    entered = await bob.enter(room, "bob")
    history = entered["history"]
    assert [(h["user"], h["message"], h["seq"]) for h in history] == [
        ("ann", f["message"], f["seq"]) for f in said[10:]
    ]
    times = [datetime.fromisoformat(h["at"]) for h in history]
    assert started <= times[0] <= times[-1] <= datetime.now().astimezone()
    assert times == sorted(times)

    # a replica that starts now restores the room from its snapshot, saved after bob entered
    await until_saved(chats, room, 50)
    late = chats.start()
    carl = await Client.connect(late.port)
    assert (await carl.enter(room, "carl"))["history"] == history


async def test_a_client_back_on_another_replica_gets_what_it_missed_once(chats: Chats) -> None:
    room = "Kitchen"
    ann, bob = await chats.client(0), await chats.client(0)
    await bob.enter(room, "bob")
    await ann.enter(room, "ann")
    await say(bob, room, ["hello ann"])
    await ann.recv_op("chat")
    since = ann.seqs[room]
    await ann.close()
    await bob.recv_op("exit")
    carl = await chats.client(1)
    await carl.enter(room, "carl")
    await say(bob, room, ["ann is gone", "hi carl"])
    await carl.send(op="exit", room=room)
    await carl.recv_op("exit")

    back = await chats.client(1)
    await back.send(op="enter", room=room, user="ann", since=since, id="again")
    replayed = [await back.recv() for _ in range(5)]
    entered = await back.recv()
    assert [f.pop("replay") for f in replayed] == [True] * 5
    assert [(f["op"], f["user"]) for f in replayed] == [
        ("exit", "ann"),
        ("enter", "carl"),
        ("chat", "bob"),
        ("chat", "bob"),
        ("exit", "carl"),
    ]
    assert [f.get("message") for f in replayed[2:4]] == ["ann is gone", "hi carl"]
    assert entered["op"] == "entered" and entered["id"] == "again" and "gap" not in entered
    assert [m["user"] for m in entered["members"]] == ["bob", "ann"]
    await say(bob, room, ["welcome back"])
    assert (await back.recv())["message"] == "welcome back"  # then the live ones


async def test_events_the_stream_no_longer_holds_are_a_gap(chats: Chats) -> None:
    room = "Attic"
    ann, bob = await chats.client(0), await chats.client(1)
    await bob.enter(room, "bob")
    await ann.enter(room, "ann")
    since = ann.seqs[room]
    await ann.close()
    await bob.recv_op("exit")
    said = await say(bob, room, ["one", "two", "three"])
    nc = await chats.admin()
    try:  # the stream drops what came before "two", as its age or size limit would
        await nc.jetstream().purge_stream(EVENTS_STREAM, seq=said[1]["seq"])
    finally:
        await nc.close()
    back = await chats.client(0)
    await back.send(op="enter", room=room, user="ann", since=since)
    replayed = [await back.recv(), await back.recv()]
    assert [(f["message"], f["replay"]) for f in replayed] == [("two", True), ("three", True)]
    entered = await back.recv()
    assert entered["op"] == "entered" and entered["gap"] is True
    assert [h["message"] for h in entered["history"]] == ["one", "two", "three"]
