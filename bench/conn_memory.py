"""Where an idle chat connection's memory goes: the chat app runs in this process under
uvicorn (as `python -m services.chat` runs it, unchanged), with tracemalloc on; N clients in
rooms of 25 connect from a `bench.connections` worker process; the Python allocations made
while they connected are grouped by the file that made them.

tracemalloc sees Python-level allocations only (not the kernel's socket buffers, nor C
libraries' own mallocs such as uvloop's), and slows the chat while it runs; RSS per connection
comes from `bench.connections`.

Run: `python -m bench.conn_memory --count 1000`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import tracemalloc
from collections import Counter

import uvicorn

from bench.stack import Stack
from bench.util import free_port, install_uvloop, raise_nofile

__all__ = ["main"]


def _by_file(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> Counter[str]:
    grouped: Counter[str] = Counter()
    for stat in after.compare_to(before, "filename"):
        name = stat.traceback[0].filename
        for marker in ("site-packages/", "lib/python3.11/", "/wt-bench/"):
            if marker in name:
                name = name.split(marker, 1)[1]
        grouped[name] += stat.size_diff
    return grouped


async def _measure(count: int, stack: Stack, top: int) -> None:
    port = free_port()
    os.environ.update(
        NATS_URL=stack.nats_url,
        CHAT_PORT=str(port),
        BIND_HOST="127.0.0.1",
        CHAT_RATE_LIMIT="0",
        CHAT_HOST_CONNECTIONS="0",
        CHAT_HOST_ROOMS_PER_MINUTE="0",
        CHAT_ROOM_LIMIT="25",
        LOG_LEVEL="WARNING",
    )
    from services.chat.app import create_app
    from services.chat.settings import ChatSettings
    from services.chat.wsserver import ChatWebSocketProtocol

    settings = ChatSettings()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws=ChatWebSocketProtocol,  # as services/chat/__main__.py
        ws_ping_interval=20,
        ws_ping_timeout=20,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    for _ in range(600):  # up to 30 s
        if server.started:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(2)  # NATS connected, stream ready
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    worker = stack.python(
        "clients",
        "bench.connections",
        "--worker",
        f"ws://127.0.0.1:{port}/ws",
        "127.0.0.2",
        "0",
        str(count),
    )
    t0 = time.monotonic()
    while '"ready"' not in worker.tail():
        if time.monotonic() - t0 > 300 or not worker.alive():
            raise RuntimeError(f"clients did not get ready:\n{worker.tail()}")
        await asyncio.sleep(0.1)
    await asyncio.sleep(2)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grouped = _by_file(before, after)
    total = sum(grouped.values())
    print(f"{count} connections: Python allocations +{total / count / 1024:.1f} KiB each")
    for name, size in grouped.most_common(top):
        print(f"  {size / count:8.0f} B  {name}")
    worker.stop()
    server.should_exit = True
    await asyncio.wait_for(serving, 30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="tracemalloc of idle chat connections")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    raise_nofile()
    install_uvloop()  # as uvicorn picks it for `python -m services.chat`
    with Stack() as stack:
        stack.nats()
        asyncio.run(_measure(args.count, stack, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
