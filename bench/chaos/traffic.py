"""Steady chat traffic for the chaos run, through real websocket clients.

Each room has `users` client slots. A slot loops: connect to a chat replica, enter the room
under a fresh name, chat a few messages (each one unique, so the checker can find it in the
stream), leave, pause. Every room-event frame a session receives for its room is recorded in order
(a `View`); a message refused `unavailable` is noted (its sender never saw it accepted). A
request without an answer within `REPLY_S`, or a connection that ends, makes the slot move to
the other chat replica, reconnect and enter again.

Which replica: with `spread` false (the default until the chats share rooms) all clients of a
room use the room's current replica, and a client that loses it moves the whole room to the
other; with `spread` true each slot keeps its own replica, so one room's clients are on both.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from typing import Any

import websockets

from bench.chaos.check import View

__all__ = ["Traffic"]

ROOM_EVENTS = frozenset({"entered", "enter", "exit", "chat", "ring", "kick"})  # with a seq
REPLY_S = 15.0  # longer than CHAT_PUBLISH_TIMEOUT_S: a stalled NATS gets `unavailable` first


class _Session:
    def __init__(self, client: str, room: str, replica: int) -> None:
        self.client = client
        self.room = room
        self.replica = replica
        self.frames: list[tuple[int, str | None]] = []  # (seq, a chat frame's message)
        self.ended = 0.0  # unix time
        self.how = ""  # "left", or the exception that ended the connection


class Traffic:
    """The clients of `rooms` on the chat replicas listening on `ports`."""

    def __init__(
        self,
        ports: list[int],
        rooms: list[str],
        users: int,
        spread: bool,
        pause_s: float,
        seed: int,
    ) -> None:
        self.ports = ports
        self.rooms = rooms
        self.users = users
        self.spread = spread
        self.pause_s = pause_s
        self.seed = seed
        self.current = {room: i % len(ports) for i, room in enumerate(rooms)}
        self.sessions: list[_Session] = []
        self.refused: list[str] = []
        self.stats: Counter[str] = Counter()
        self._stop = asyncio.Event()

    def views(self) -> list[View]:
        return [View(s.client, s.room, tuple(s.frames)) for s in self.sessions]

    def ends(self) -> dict[str, tuple[str, float, str]]:
        """Each session's user name: (its chat replica, when it ended, how)."""
        return {s.client: (f"chat-{s.replica}", s.ended, s.how) for s in self.sessions}

    def stop(self) -> None:
        """Each client finishes its session (leaves its room) and stops."""
        self._stop.set()

    async def run(self) -> None:
        await asyncio.gather(
            *(
                self._client(r, room, slot)
                for r, room in enumerate(self.rooms)
                for slot in range(self.users)
            )
        )

    async def _client(self, r: int, room: str, slot: int) -> None:
        rng = random.Random(f"{self.seed}-{r}-{slot}")
        own = slot % len(self.ports)
        incarnation = 0
        await asyncio.sleep(rng.uniform(0, 2))
        while not self._stop.is_set():
            replica = own if self.spread else self.current[room]
            session = _Session(f"r{r}u{slot}x{incarnation}", room, replica)
            incarnation += 1
            try:
                async with websockets.connect(
                    f"ws://127.0.0.1:{self.ports[replica]}/ws",
                    open_timeout=5,
                    close_timeout=2,
                    max_size=None,
                ) as ws:
                    self.stats["connections"] += 1
                    await self._session(ws, session, rng)
                session.how = "left"
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                session.how = type(exc).__name__
                session.ended = time.time()
                self.stats[f"moved: {session.how}"] += 1
                other = (replica + 1) % len(self.ports)
                if self.spread:
                    own = other
                elif self.current[room] == replica:
                    self.current[room] = other
                await asyncio.sleep(rng.uniform(0.2, 1.0))
                continue
            session.ended = time.time()
            await asyncio.sleep(rng.uniform(0, 2 * self.pause_s))

    async def _session(
        self, ws: websockets.ClientConnection, session: _Session, rng: random.Random
    ) -> None:
        room, name = session.room, session.client
        reply = await self._request(ws, session, {"op": "enter", "room": room, "user": name})
        if reply["op"] != "entered":
            self.stats[f"enter refused: {reply.get('code')}"] += 1
            return
        self.sessions.append(session)
        for n in range(rng.randint(3, 12)):
            if self._stop.is_set():
                break
            message = f"{name}.{n}"
            frame = {"op": "chat", "room": room, "message": message}
            reply = await self._request(ws, session, frame)
            if reply["op"] == "chat":
                self.stats["chat accepted"] += 1
            elif reply.get("code") == "unavailable":
                self.stats["chat unavailable"] += 1
                self.refused.append(message)
            else:
                self.stats[f"chat refused: {reply.get('code')}"] += 1
            await asyncio.sleep(rng.uniform(0, 2 * self.pause_s))
        reply = await self._request(ws, session, {"op": "exit", "room": room})
        self.stats["exit accepted" if reply["op"] == "exit" else "exit refused"] += 1

    async def _request(
        self, ws: websockets.ClientConnection, session: _Session, frame: dict[str, Any]
    ) -> dict[str, Any]:
        """Sends `frame` with a fresh id and reads until its answer, recording the room's event
        frames on the way (the sender's own copies included)."""
        request_id = self.stats["requests"] = self.stats["requests"] + 1
        await ws.send(json.dumps({**frame, "id": request_id}))
        async with asyncio.timeout(REPLY_S):
            while True:
                got = json.loads(await ws.recv())
                op = got.get("op")
                if op in ROOM_EVENTS and got.get("room") == session.room:
                    message = got["message"] if op == "chat" else None
                    session.frames.append((int(got.get("seq", 0)), message))
                if got.get("id") == request_id:
                    return dict(got)
