"""One chat event travels from a browser socket to a callback as XML (issue 2).

nats-server and the three services run as separate processes; the callback is a real HTTP
server; the clients are real websocket clients.
"""

from __future__ import annotations

import asyncio
import json
import time
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest
import websockets

from shared.codec import parse
from shared.events import ChatEvent, CreateEvent, DeleteEvent, EnterEvent, ExitEvent
from tests.conftest import API_TOKEN, System

pytestmark = pytest.mark.e2e

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


async def recv_op(ws: Any, op: str, within_s: float = 10.0) -> dict[str, Any]:
    """The next frame with this op (other frames, such as another's enter, are skipped)."""
    deadline = time.monotonic() + within_s
    while True:
        frame = json.loads(await ws.recv())
        if frame.get("op") == op:
            return dict(frame)
        if frame.get("op") == "error":
            raise AssertionError(f"error frame: {frame}")
        if time.monotonic() > deadline:
            raise TimeoutError(op)


def register(base_url: str, room: str, url: str) -> dict[str, Any]:
    response = httpx.post(
        f"{base_url}/v1/subscriptions", json={"room": room, "url": url}, headers=AUTH
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_chat_event_reaches_callback_as_xml(system: System, receiver_factory: Any) -> None:
    receiver = receiver_factory()
    registry, _, chat = system.start_all(receiver.url)
    room = "Skeleton Room"
    sub = register(registry.base_url, room, receiver.url)
    assert sub["secret"].startswith("whsec_")

    message = "5 < 6 & \"quoted\" 'apos' \x07 bell"
    ws_url = f"ws://127.0.0.1:{chat.port}/ws"
    async with websockets.connect(ws_url) as alice, websockets.connect(ws_url) as bob:
        await alice.send(
            json.dumps(
                {
                    "op": "enter",
                    "room": room,
                    "user": "alice",
                    "profile": "<b>Alice</b> & co",
                    "id": 1,
                }
            )
        )
        entered = await recv_op(alice, "entered")
        assert entered["id"] == 1
        assert [m["user"] for m in entered["members"]] == ["alice"]
        await bob.send(json.dumps({"op": "enter", "room": room, "user": "bob"}))
        entered = await recv_op(bob, "entered")
        assert [m["user"] for m in entered["members"]] == ["alice", "bob"]
        assert (await recv_op(alice, "enter"))["user"] == "bob"

        await alice.send(json.dumps({"op": "chat", "room": room, "message": message}))
        assert (await recv_op(bob, "chat"))["message"] == message
        assert (await recv_op(alice, "chat"))["message"] == message

        await alice.send(json.dumps({"op": "exit", "room": room}))
        assert (await recv_op(bob, "exit"))["user"] == "alice"
        await bob.send(json.dumps({"op": "exit", "room": room}))
        await recv_op(bob, "exit")

    received = receiver.wait_for(7)
    assert len(received) == 7, [r.body for r in received]
    for r in received:
        ET.fromstring(r.body)  # strict, well-formed
        assert r.headers["content-type"] == "application/xml; charset=utf-8"
        assert r.headers["webhook-id"]
        assert r.headers["webhook-signature"].startswith("v1,")
    events = [parse(r.body) for r in received]
    assert events == [
        CreateEvent(room),
        EnterEvent(room, "alice", "127.0.0.1", "<b>Alice</b> & co", "non-member"),
        EnterEvent(room, "bob", "127.0.0.1", "", "non-member"),
        ChatEvent(room, "alice", message.replace("\x07", "\ufffd")),
        ExitEvent(room, "alice"),
        ExitEvent(room, "bob"),
        DeleteEvent(room),
    ]
    assert received[1].body.decode() == (
        '<enter type="non-member"><room>Skeleton Room</room><user>alice</user>'
        "<host>127.0.0.1</host><profile>&lt;b&gt;Alice&lt;/b&gt; &amp; co</profile></enter>\n"
    )
    assert len({r.headers["webhook-id"] for r in received}) == 7


async def test_callback_answering_500_is_removed(system: System, receiver_factory: Any) -> None:
    failing = receiver_factory(status=500)
    healthy = receiver_factory()
    registry, _, chat = system.start_all(f"{failing.url} {healthy.url}")
    room = "Failing Room"
    doomed = register(registry.base_url, room, failing.url)
    register(registry.base_url, room, healthy.url)

    ws_url = f"ws://127.0.0.1:{chat.port}/ws"
    async with websockets.connect(ws_url) as carol:
        await carol.send(json.dumps({"op": "enter", "room": room, "user": "carol"}))
        await recv_op(carol, "entered")
        assert len(failing.wait_for(1)) == 1  # the create

        deadline = time.monotonic() + 10
        async with httpx.AsyncClient(headers=AUTH) as client:
            while time.monotonic() < deadline:
                gone = await client.get(f"{registry.base_url}/v1/subscriptions/{doomed['id']}")
                if gone.status_code == 404:
                    break
                await asyncio.sleep(0.1)
        assert gone.status_code == 404

        for n in range(3):
            await carol.send(json.dumps({"op": "chat", "room": room, "message": f"m{n}"}))
            await recv_op(carol, "chat")
    # the healthy callback saw everything: create, enter, 3 chats, exit, delete
    assert len(healthy.wait_for(7)) == 7
    assert len(failing.received) == 1
    assert parse(failing.received[0].body) == CreateEvent(room)
