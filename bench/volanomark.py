"""The VolanoMark client over our websocket protocol (docs/websocket.md), as one process.

R rooms x U users x M messages. Every user connects, enters its room and waits until it has seen
the whole room. Then users take turns as in the original VolanoMark: a user sends when
(sent + received) mod room size equals its turn index, where `received` counts the other users'
chat messages (not the copy of its own). Each message is the same 60-character string.

Score = (messages sent + messages received from others) / seconds from the first send (after
everyone entered) to the last receive. One room of 20 users x 100 messages moves
2,000 + 38,000 = 40,000 messages.

Run: `python -m bench.volanomark --url ws://127.0.0.1:8000/ws --rooms 10`; prints one JSON line.
`--url` may list several chat replicas, comma-separated: the users of each room are dealt to
them in turn, so every room spans them all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass, field

from websockets.asyncio.client import ClientConnection, connect

from bench.util import install_uvloop, raise_nofile

__all__ = ["MESSAGE", "Result", "run_volanomark"]

MESSAGE = "VolanoMark chat message of exactly sixty characters, padded."
assert len(MESSAGE) == 60


@dataclass(slots=True)
class Result:
    rooms: int
    users: int
    messages: int
    sent: int
    received: int
    seconds: float
    score: float  # messages a second: (sent + received) / seconds
    connect_s: float  # time for all users to connect and see their full room
    client_cpu_s: float  # CPU time of this client process, connecting included
    errors: list[str] = field(default_factory=list)


class Clock:
    """Shared by all users: the first send and the last receive."""

    def __init__(self) -> None:
        self.first_send: float | None = None
        self.last_receive = 0.0


class User:
    def __init__(
        self, room: str, name: str, index: int, size: int, messages: int, clock: Clock
    ) -> None:
        self.room = room
        self.name = name
        self.index = index  # turn index within the room
        self.size = size
        self.messages = messages
        self.clock = clock
        self.sent = 0
        self.received = 0  # other users' chat messages
        self.seen = 0  # members of the room this user knows about
        self.full = asyncio.Event()  # this user has seen the whole room
        self.done = asyncio.Event()
        self.ws: ClientConnection | None = None

    async def enter(self, url: str, timeout_s: float) -> None:
        self.ws = await connect(
            url, max_queue=None, compression=None, ping_interval=None, open_timeout=timeout_s
        )
        await self.ws.send(json.dumps({"op": "enter", "room": self.room, "user": self.name}))

    def _my_turn(self) -> bool:
        return self.sent < self.messages and (self.sent + self.received) % self.size == self.index

    async def _send(self) -> None:
        assert self.ws is not None
        if self.clock.first_send is None:
            self.clock.first_send = time.perf_counter()
        self.sent += 1
        await self.ws.send(f'{{"op":"chat","room":"{self.room}","message":"{MESSAGE}"}}')

    def _check_done(self) -> None:
        if self.sent >= self.messages and self.received >= (self.size - 1) * self.messages:
            self.done.set()

    async def read_loop(self, start: asyncio.Event) -> None:
        assert self.ws is not None
        async for raw in self.ws:
            frame = json.loads(raw)
            op = frame.get("op")
            if op == "chat":
                if frame.get("user") == self.name:
                    continue
                self.received += 1
                self.clock.last_receive = time.perf_counter()
                if self._my_turn():
                    await self._send()
                self._check_done()
                if self.done.is_set():
                    return
            elif op == "entered":
                self.seen = len(frame.get("members", []))
            elif op == "enter":
                self.seen += 1
            elif op == "error":
                raise RuntimeError(f"{self.name}@{self.room}: {frame}")
            if not self.full.is_set() and self.seen >= self.size:
                self.full.set()
                await start.wait()
                if self._my_turn():
                    await self._send()


async def run_volanomark(
    url: str,
    rooms: int,
    users: int,
    messages: int,
    *,
    room_prefix: str = "vm",
    timeout_s: float = 600.0,
) -> Result:
    clock = Clock()
    start = asyncio.Event()
    all_users = [
        User(f"{room_prefix}-{r}", f"u{i}", i, users, messages, clock)
        for r in range(rooms)
        for i in range(users)
    ]
    t0 = time.perf_counter()
    errors: list[str] = []
    urls = [u.strip() for u in url.split(",") if u.strip()]
    # Connect in batches so the listen backlog is never the bottleneck.
    for i in range(0, len(all_users), 100):
        batch = all_users[i : i + 100]
        await asyncio.gather(*(u.enter(urls[u.index % len(urls)], 60.0) for u in batch))
    readers = [asyncio.create_task(u.read_loop(start)) for u in all_users]
    try:
        full = asyncio.gather(*(u.full.wait() for u in all_users))
        await asyncio.wait_for(full, 120.0)
        connect_s = time.perf_counter() - t0
        # Every user is parked in its read loop on `start`; the one whose turn it is sends.
        start.set()
        done = asyncio.gather(*(u.done.wait() for u in all_users))
        await asyncio.wait_for(done, timeout_s)
    except TimeoutError:
        errors.append("timed out")
        connect_s = time.perf_counter() - t0
    finally:
        for task in readers:
            if task.done() and not task.cancelled() and task.exception() is not None:
                errors.append(repr(task.exception()))
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await asyncio.gather(
            *(u.ws.close() for u in all_users if u.ws is not None), return_exceptions=True
        )
    sent = sum(u.sent for u in all_users)
    received = sum(u.received for u in all_users)
    seconds = clock.last_receive - clock.first_send if clock.first_send else 0.0
    score = (sent + received) / seconds if seconds > 0 else 0.0
    return Result(
        rooms,
        users,
        messages,
        sent,
        received,
        seconds,
        score,
        connect_s,
        time.process_time(),
        errors[:5],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--room-prefix", default="vm")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args(argv)
    raise_nofile()
    if args.loop == "uvloop":
        install_uvloop()
    result = asyncio.run(
        run_volanomark(
            args.url,
            args.rooms,
            args.users,
            args.messages,
            room_prefix=args.room_prefix,
            timeout_s=args.timeout,
        )
    )
    print(json.dumps(asdict(result)), flush=True)
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
