"""History benchmark: what `history` costs an `enter` (docs/websocket.md, "History").

    .venv/bin/python -m bench.history [--rooms 10] [--enters 300] [--chats 60] [--pairs 3]

For each pair, one run with `CHAT_HISTORY=50` and one with `CHAT_HISTORY=0`, in turn, each on a
fresh nats-server and chat (processes). In each of `--rooms` rooms a keeper enters and says
`--chats` messages, so the room's history is full; then one client per room, all at once,
enters and exits its room `--enters` times, each `enter` answered by `entered` and each `exit`
by the leaver's own `exit` before the next. Measured: enters a second over the whole phase
(every room together), the chat's CPU time per enter+exit, and the size of an `entered`.
Prints each run, then a Markdown table of medians for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect

from bench.stack import Stack, cpu_seconds
from bench.util import machine, raise_nofile

__all__ = ["main"]

HISTORY = (50, 0)
MESSAGE = "A history message of sixty characters, padded out to length."
assert len(MESSAGE) == 60


@dataclass
class Run:
    history: int
    enters_per_s: float
    chat_cpu_us: float  # chat CPU per enter and exit
    entered_bytes: int


async def recv_op(ws: ClientConnection, op: str) -> str:
    while True:
        text = str(await ws.recv())
        frame = json.loads(text)
        if frame["op"] == op:
            return text
        if frame["op"] == "error":
            raise RuntimeError(f"expected {op}: {frame}")


async def fill(url: str, room: str, chats: int) -> ClientConnection:
    """A keeper in the room (so it stays) who has said `chats` messages."""
    ws = await connect(url, max_size=None)
    await ws.send(json.dumps({"op": "enter", "room": room, "user": "keeper"}))
    await recv_op(ws, "entered")
    for _ in range(chats):
        await ws.send(json.dumps({"op": "chat", "room": room, "message": MESSAGE}))
        await recv_op(ws, "chat")
    return ws


async def cycle(url: str, room: str, enters: int) -> int:
    """`enters` times in and out of the room; the size of the last `entered`."""
    size = 0
    async with connect(url, max_size=None) as ws:
        for _ in range(enters):
            await ws.send(json.dumps({"op": "enter", "room": room, "user": "visitor"}))
            size = len((await recv_op(ws, "entered")).encode())
            await ws.send(json.dumps({"op": "exit", "room": room}))
            await recv_op(ws, "exit")
    return size


async def run(history: int, rooms: int, enters: int, chats: int) -> Run:
    with Stack() as stack:
        stack.nats()
        chat, port = stack.service(
            "chat",
            CHAT_HISTORY=str(history),
            CHAT_RATE_LIMIT="0",
            CHAT_HOST_CONNECTIONS="0",
            CHAT_HOST_ROOMS_PER_MINUTE="0",
        )
        url = f"ws://127.0.0.1:{port}/ws"
        names = [f"History {n}" for n in range(rooms)]
        keepers = await asyncio.gather(*(fill(url, name, chats) for name in names))
        cpu0, started = cpu_seconds(chat.pid), time.perf_counter()
        sizes = await asyncio.gather(*(cycle(url, name, enters) for name in names))
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(chat.pid) - cpu0
        for ws in keepers:
            await ws.close()
    total = rooms * enters
    return Run(history, total / elapsed, 1e6 * cpu / total, max(sizes))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, default=10, help="rooms entered at once")
    parser.add_argument("--enters", type=int, default=300, help="enters (and exits) a room")
    parser.add_argument("--chats", type=int, default=60, help="messages said in each room first")
    parser.add_argument("--pairs", type=int, default=3, help="runs of each setting, in turn")
    args = parser.parse_args()
    raise_nofile()
    runs: list[Run] = []
    for _ in range(args.pairs):
        for history in HISTORY:
            runs.append(await run(history, args.rooms, args.enters, args.chats))
            print(runs[-1], file=sys.stderr)
    print(
        f"{machine()}; {args.rooms} rooms x {args.enters} enters, {args.chats} chats a room first\n"
    )
    print(
        "| `CHAT_HISTORY` | enters / s (median) | chat CPU / enter+exit | `entered` bytes | runs |"
    )
    print("| ---: | ---: | ---: | ---: | ---: |")
    for history in HISTORY:
        mine = [r for r in runs if r.history == history]
        print(
            f"| {history} | {statistics.median(r.enters_per_s for r in mine):,.0f} "
            f"| {statistics.median(r.chat_cpu_us for r in mine):,.0f} µs "
            f"| {mine[0].entered_bytes:,} | {len(mine)} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
