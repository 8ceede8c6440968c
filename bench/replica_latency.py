"""How long a chat takes from a member on one chat replica to a member on another.

One room, a sender connected to replica A and a reader connected to replica B (both in this
process, so one clock); the sender says `rate` messages a second, each carrying its send time,
for `seconds`; the reader notes when each arrives. Prints (or returns) the percentiles.

Run: `python -m bench.replica_latency --urls ws://127.0.0.1:8000/ws,ws://127.0.0.1:8001/ws`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

__all__ = ["cross_replica_latency"]


async def _entered(ws: ClientConnection, room: str, user: str) -> None:
    await ws.send(json.dumps({"op": "enter", "room": room, "user": user}))
    while json.loads(await ws.recv()).get("op") != "entered":
        pass


async def cross_replica_latency(
    sender_url: str, reader_url: str, rate: float = 100.0, seconds: float = 10.0
) -> dict[str, Any]:
    room = f"latency-{time.time_ns()}"
    async with (
        connect(sender_url, compression=None, max_queue=None) as sender,
        connect(reader_url, compression=None, max_queue=None) as reader,
    ):
        await _entered(sender, room, "sender")
        await _entered(reader, room, "reader")
        count = int(rate * seconds)
        delays: list[float] = []

        async def read() -> None:
            while len(delays) < count:
                frame = json.loads(await reader.recv())
                if frame.get("op") == "chat":
                    delays.append(time.perf_counter() - float(frame["message"]))

        reading = asyncio.create_task(read())
        start = time.perf_counter()
        for i in range(count):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            message = repr(time.perf_counter())
            await sender.send(json.dumps({"op": "chat", "room": room, "message": message}))
        await asyncio.wait_for(reading, 30)
    ms = sorted(d * 1000 for d in delays)
    return {
        "messages": len(ms),
        "rate": rate,
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[int(0.99 * (len(ms) - 1))], 2),
        "max_ms": round(ms[-1], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urls", required=True, help="sender's replica,reader's replica")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    sender_url, reader_url = args.urls.split(",")
    result = asyncio.run(cross_replica_latency(sender_url, reader_url, args.rate, args.seconds))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
