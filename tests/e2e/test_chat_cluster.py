"""Several chat replicas on one NATS serve the same rooms (docs/design.md, "Chat replicas"):
real chat processes, a real registry, dispatcher and callback receiver, real websockets."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.chaos.proxy import Proxy
from services.chat.token import mint
from shared.callback_receiver import CallbackReceiver
from shared.events import (
    ChatEvent,
    CreateEvent,
    DeleteEvent,
    EnterEvent,
    Event,
    ExitEvent,
    KickEvent,
    RingEvent,
)
from shared.nats_binary import nats_server_binary, nats_server_env
from tests.chat.wsclient import Client, register, room_events, start_together
from tests.conftest import NatsServer, Service, System, free_port, wait_for_port

pytestmark = pytest.mark.e2e

KEY = "cluster-test-jwt-secret-0123456789-abcdef"
CHAT_ENV = {
    "CHAT_JWT_SECRET": KEY,
    "CHAT_HOST_CONNECTIONS": "0",
    "CHAT_HOST_ROOMS_PER_MINUTE": "0",
    "CHAT_ROOM_LIMIT": "5",
}


@dataclass
class Cluster:
    system: System
    registry: Service
    chats: list[Service]
    receiver: CallbackReceiver

    def register(self, room: str) -> None:
        register(self.registry.base_url, room, self.receiver.url)

    async def client(self, replica: int, host: str = "127.0.0.1") -> Client:
        return await Client.connect(self.chats[replica].port, local_host=host)


@pytest.fixture
async def cluster(system: System, receiver_factory: object) -> AsyncIterator[Cluster]:
    receiver: CallbackReceiver = receiver_factory()  # type: ignore[operator]
    registry, _, first = system.start_all(receiver.url, **CHAT_ENV)
    others = [system.service("chat", **CHAT_ENV) for _ in range(2)]
    start_together(*others)
    yield Cluster(system, registry, [first, *others], receiver)


async def events_of(receiver: CallbackReceiver, room: str, count: int) -> list[Event]:
    return [event for event, _ in await room_events(receiver, room, count, within_s=30)]


async def test_users_on_three_replicas_chat_ring_and_kick_as_one_room(cluster: Cluster) -> None:
    room = "Hub"
    cluster.register(room)
    ann, bob, mod = [await cluster.client(i) for i in range(3)]
    assert (await ann.enter(room, "ann"))["members"] == [
        {"user": "ann", "profile": "", "type": "non-member"}
    ]
    entered = await bob.enter(room, "bob")
    assert [m["user"] for m in entered["members"]] == ["ann", "bob"]
    assert (await ann.recv_op("enter"))["user"] == "bob"
    await mod.enter(room, "x", token=mint("Mod", "monitor", KEY))
    await bob.send(op="chat", room=room, message="hi from 2", id="c")
    assert (await bob.recv_op("chat"))["id"] == "c"
    for other in (ann, mod):
        assert (await other.recv_op("chat"))["message"] == "hi from 2"
    await ann.send(op="ring", room=room, to="bob")
    assert (await bob.recv_op("ring")) == {"op": "ring", "room": room, "from": "ann"}
    await mod.send(op="kick", room=room, to="bob", type="disconnect")
    assert await bob.closed_code() == 4001
    kick = await ann.recv_op("kick")
    assert kick == {"op": "kick", "room": room, "from": "Mod", "to": "bob", "type": "disconnect"}
    assert (await ann.recv_op("exit"))["user"] == "bob"
    # a name in use on one replica is taken on the others
    carl = await cluster.client(2)
    await carl.send(op="enter", room=room, user="ann")
    await carl.error("name_taken")
    await carl.send(op="enter", room=room, user="Mod")
    await carl.error("member_taken")
    assert await events_of(cluster.receiver, room, 8) == [
        CreateEvent(room),
        EnterEvent(room, "ann", "127.0.0.1", ""),
        EnterEvent(room, "bob", "127.0.0.1", ""),
        EnterEvent(room, "Mod", "127.0.0.1", "", "member"),
        ChatEvent(room, "bob", "hi from 2"),
        RingEvent(room, "ann", "bob"),
        KickEvent(room, "Mod", "bob", "disconnect"),
        ExitEvent(room, "bob"),
    ]


async def test_racing_enters_get_exactly_the_free_places_and_one_create(cluster: Cluster) -> None:
    room = "Race"
    cluster.register(room)
    clients = [await cluster.client(i % 3) for i in range(12)]
    for i, c in enumerate(clients):
        await c.send(op="enter", room=room, user=f"u{i}")
    answers: Counter[str] = Counter()
    for c in clients:  # the first frame is the answer: nobody is in the room before it
        frame = await c.recv()
        answers[frame["op"] if frame["op"] == "entered" else frame["code"]] += 1
    assert answers == {"entered": 5, "room_full": 7}
    await events_of(cluster.receiver, room, 6)
    await asyncio.sleep(1)  # and no more
    events = await events_of(cluster.receiver, room, 0)
    assert [e.kind for e in events] == ["create"] + ["enter"] * 5


async def test_a_killed_replicas_users_leave_every_room_once(cluster: Cluster) -> None:
    rooms = [f"Room {i}" for i in range(5)]
    for room in rooms:
        cluster.register(room)
    watcher = await cluster.client(0)
    doomed = [await cluster.client(1) for _ in range(2)]
    for i, room in enumerate(rooms):
        await doomed[0].enter(room, "dee")
        if i % 2 == 0:  # in the other rooms dee is alone: they are deleted
            await watcher.enter(room, "watcher")
        await doomed[1].enter(room, "dum")
    killed = time.monotonic()
    cluster.chats[1].stop(signal.SIGKILL)
    seen: list[tuple[str, str]] = []
    while len(seen) < 6:  # dee and dum leave the three rooms the watcher is in
        frame = await watcher.recv_op("exit", within_s=30)
        seen.append((frame["room"], frame["user"]))
    assert time.monotonic() - killed < 15
    assert sorted(seen) == sorted((r, u) for r in rooms[::2] for u in ("dee", "dum"))
    for i, room in enumerate(rooms):
        expected = [CreateEvent(room), EnterEvent(room, "dee", "127.0.0.1", "")]
        if i % 2 == 0:
            expected.append(EnterEvent(room, "watcher", "127.0.0.1", ""))
        expected.append(EnterEvent(room, "dum", "127.0.0.1", ""))
        gone = [ExitEvent(room, "dee"), ExitEvent(room, "dum")]
        tail = gone if i % 2 == 0 else [*gone, DeleteEvent(room)]
        events = await events_of(cluster.receiver, room, len(expected) + len(tail))
        assert events[: len(expected)] == expected
        assert sorted(map(str, events[len(expected) :])) == sorted(map(str, tail))
        if DeleteEvent(room) in events:
            assert events[-1] == DeleteEvent(room)
    await asyncio.sleep(3)  # and nothing more: each exit went out once
    for room in rooms:
        assert len(await events_of(cluster.receiver, room, 0)) == 6


async def test_sigterm_hands_users_over_to_another_replica(cluster: Cluster) -> None:
    room = "Handover"
    cluster.register(room)
    stay = await cluster.client(0)
    await stay.enter(room, "stay")
    moving = await cluster.client(2)
    await moving.enter(room, "mover")
    cluster.chats[2].stop(signal.SIGTERM)
    assert await moving.closed_code() in (1001, 1012)  # ours, or uvicorn's on shutdown
    assert (await stay.recv_op("exit"))["user"] == "mover"
    again = await cluster.client(1)  # the web client reconnects elsewhere and enters again
    await again.enter(room, "mover")
    assert (await stay.recv_op("enter"))["user"] == "mover"
    assert await events_of(cluster.receiver, room, 5) == [
        CreateEvent(room),
        EnterEvent(room, "stay", "127.0.0.1", ""),
        EnterEvent(room, "mover", "127.0.0.1", ""),
        ExitEvent(room, "mover"),
        EnterEvent(room, "mover", "127.0.0.1", ""),
    ]


async def test_a_replica_cut_off_from_nats_stops_serving_and_its_users_leave(
    system: System, receiver_factory: object
) -> None:
    receiver: CallbackReceiver = receiver_factory()  # type: ignore[operator]
    registry, _, chat = system.start_all(receiver.url, **CHAT_ENV)
    proxy = Proxy("nats", free_port(), system.nats.port)
    await proxy.start()
    cut_off = system.service("chat", **CHAT_ENV, NATS_URL=f"nats://127.0.0.1:{proxy.port}")
    await asyncio.to_thread(cut_off.start)
    room = "Island"
    register(registry.base_url, room, receiver.url)
    stay = await Client.connect(chat.port)
    await stay.enter(room, "stay")
    island = await Client.connect(cut_off.port)
    await island.enter(room, "islander")
    proxy.stall(True)
    try:
        assert await island.closed_code(within_s=20) == 1012  # reconnect elsewhere
        assert (await stay.recv_op("exit", within_s=20))["user"] == "islander"
    finally:
        proxy.stall(False)
    await asyncio.to_thread(cut_off.wait_ready)  # serving again, under a new name
    back = await Client.connect(cut_off.port)
    await back.enter(room, "islander")
    assert (await stay.recv_op("enter"))["user"] == "islander"
    events = await events_of(receiver, room, 5)
    assert events == [
        CreateEvent(room),
        EnterEvent(room, "stay", "127.0.0.1", ""),
        EnterEvent(room, "islander", "127.0.0.1", ""),
        ExitEvent(room, "islander"),
        EnterEvent(room, "islander", "127.0.0.1", ""),
    ]
    await proxy.close()


class ThreeNodes(NatsServer):
    """A 3-node JetStream cluster on 127.0.0.1 (no auth); `url` lists every node."""

    def __init__(self, store: Path) -> None:
        super().__init__(store)
        self.ports = [free_port() for _ in range(3)]
        self.routes = [free_port() for _ in range(3)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None, None, None]

    @property
    def url(self) -> str:
        return ",".join(f"nats://127.0.0.1:{p}" for p in self.ports)

    def start_node(self, i: int) -> None:
        routes = ",".join(f"nats://127.0.0.1:{r}" for r in self.routes)
        command = [
            nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(self.ports[i]),
            "-n", f"n{i}", "--cluster_name", "volano", "--cluster",
            f"nats://127.0.0.1:{self.routes[i]}", "--routes", routes,
            "-sd", str(self.store / f"n{i}"),
        ]  # fmt: skip
        with (self.store.parent / f"nats-n{i}.log").open("ab") as log:
            self.procs[i] = subprocess.Popen(
                command, env=nats_server_env(), stdout=subprocess.DEVNULL, stderr=log
            )
        wait_for_port(self.ports[i])

    def start(self) -> None:
        for i in range(3):
            self.start_node(i)

    def stop_node(self, i: int, sig: int = signal.SIGKILL) -> None:
        proc, self.procs[i] = self.procs[i], None
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            proc.wait(15)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        for i in range(3):
            self.stop_node(i, sig)


@pytest.fixture
def three_nodes(tmp_path: Path) -> Iterator[System]:
    nodes = ThreeNodes(tmp_path / "cluster")
    nodes.start()
    system = System(nodes, tmp_path)
    yield system
    for svc in system.services:
        svc.stop(signal.SIGKILL)
    nodes.stop(signal.SIGKILL)


async def test_replicas_share_rooms_on_a_three_node_cluster_that_loses_a_node(
    three_nodes: System, receiver_factory: object
) -> None:
    receiver: CallbackReceiver = receiver_factory()  # type: ignore[operator]
    # a JetStream leader election after a node dies can take seconds on a loaded machine: a
    # longer heartbeat keeps the replicas from fencing themselves during it (tested elsewhere)
    env = {**CHAT_ENV, "NATS_REPLICAS": "3", "CHAT_REPLICA_TTL_S": "30"}
    registry, _, first = three_nodes.start_all(receiver.url, **env)
    second = three_nodes.service("chat", **env)
    await asyncio.to_thread(second.start)
    room = "Cluster"
    register(registry.base_url, room, receiver.url)
    clients = [await Client.connect(chat.port) for chat in (first, second, first, second)]
    for i, c in enumerate(clients):
        await c.send(op="enter", room=room, user=f"u{i}")
    answers = Counter([(await c.recv())["op"] for c in clients])
    assert answers == {"entered": 4}
    nodes = three_nodes.nats
    assert isinstance(nodes, ThreeNodes)
    nodes.stop_node(2)  # a node dies; the other two keep the quorum
    deadline = time.monotonic() + 30
    while True:  # `unavailable` while a replica reconnects to another node: try again
        await clients[1].send(op="chat", room=room, message="still here", id="s")
        frame = await clients[1].recv(within_s=30)
        while frame["op"] not in ("chat", "error"):  # others' enters, before
            frame = await clients[1].recv(within_s=30)
        if frame["op"] == "chat" or time.monotonic() > deadline:
            break
        assert frame["code"] == "unavailable", frame
        await asyncio.sleep(0.5)
    assert frame["op"] == "chat" and frame["id"] == "s"
    assert (await clients[0].recv_op("chat", within_s=30))["message"] == "still here"
    events = await events_of(receiver, room, 6)
    assert [e.kind for e in events] == ["create", "enter", "enter", "enter", "enter", "chat"]
