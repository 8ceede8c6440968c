"""A small websocket chat client and callback helpers for the chat's end-to-end tests."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from shared.codec import parse
from shared.events import Event
from tests.conftest import API_TOKEN, CallbackReceiver, Service

__all__ = ["Client", "register", "room_events", "start_together"]


ROOM_OPS = frozenset(("entered", "enter", "exit", "chat", "ring", "kick"))


class Client:
    """One real websocket connection to the chat.

    Every frame about a room event must carry `seq`, growing in each room as this client sees
    it (`recv` checks that and moves it to `seqs`), so the tests compare the rest exactly."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seqs: dict[str, int] = {}  # per room, the last `seq` received

    @classmethod
    async def connect(
        cls,
        port: int,
        forwarded_for: str | None = None,
        local_host: str | None = None,
        origin: str | None = None,
    ) -> Client:
        """`local_host` (any 127.x.y.z) is the address the chat sees as the peer's; `origin`
        the `Origin` a browser would send (none by default)."""
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
        extra: dict[str, Any] = {"local_addr": (local_host, 0)} if local_host else {}
        if origin is not None:
            extra["origin"] = origin
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/ws", additional_headers=headers, max_size=None, **extra
        )
        return cls(ws)

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame))

    async def recv(self, within_s: float = 10.0) -> dict[str, Any]:
        frame = json.loads(await asyncio.wait_for(self.ws.recv(), within_s))
        assert isinstance(frame, dict), frame
        if frame.get("op") in ROOM_OPS:
            seq, room = frame.pop("seq", None), frame["room"]
            assert isinstance(seq, int) and seq > self.seqs.get(room, 0), (frame, seq, self.seqs)
            self.seqs[room] = seq
        return frame

    async def recv_op(self, op: str, within_s: float = 10.0) -> dict[str, Any]:
        """The next frame with this op; other frames are skipped, an error fails the test."""
        deadline = time.monotonic() + within_s
        while True:
            frame = await self.recv(max(0.01, deadline - time.monotonic()))
            if frame["op"] == op:
                return frame
            if frame["op"] == "error":
                raise AssertionError(f"expected {op}, got error {frame}")

    async def error(self, code: str, within_s: float = 10.0) -> dict[str, Any]:
        """The next frame must be an error with this code and a readable message."""
        frame = await self.recv(within_s)
        assert frame["op"] == "error", frame
        assert frame["code"] == code, frame
        assert isinstance(frame["message"], str) and len(frame["message"]) > 5, frame
        return frame

    async def quiet(self, within_s: float = 0.3) -> list[dict[str, Any]]:
        """Every frame that arrives within the window (none, usually)."""
        frames = []
        try:
            while True:
                frames.append(await self.recv(within_s))
        except TimeoutError:
            return frames

    async def enter(self, room: str, user: str, **extra: Any) -> dict[str, Any]:
        await self.send(op="enter", room=room, user=user, **extra)
        return await self.recv_op("entered")

    async def close(self) -> None:
        await self.ws.close()

    async def closed_code(self, within_s: float = 10.0) -> int | None:
        """Wait until the server closes the connection; its close code."""
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), within_s)
        except websockets.ConnectionClosed:
            return self.ws.close_code


def register(registry_url: str, room: str, url: str) -> None:
    response = httpx.post(
        f"{registry_url}/v1/subscriptions",
        json={"room": room, "url": url},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert response.status_code == 201, response.text


async def room_events(
    receiver: CallbackReceiver, room: str, count: int, within_s: float = 15.0
) -> list[tuple[Event, str]]:
    """The first `count` events (and their XML bodies) the callback got for `room`."""
    deadline = time.monotonic() + within_s
    while True:
        found = []
        for r in list(receiver.received):
            event = parse(r.body)
            if event.room == room:
                found.append((event, r.body.decode()))
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) >= count, [body for _, body in found]
            return found
        await asyncio.sleep(0.05)


def start_together(*services: Service) -> None:
    """Start processes at once and wait for them all (quicker than one after another)."""
    with ThreadPoolExecutor(len(services)) as pool:
        for future in [pool.submit(svc.start) for svc in services]:
            future.result()
