"""Connection scale: N idle websocket connections, in rooms of 25, to one server process.

Reports the server's resident memory per connection (RSS delta from /proc, measured before the
first and after the last connection has entered its room and the server has settled) and the
time to open and enter them all. Clients are `--workers` processes, each with its own source
address 127.0.0.(2+k), so no single (source, destination) pair runs out of ephemeral ports;
RLIMIT_NOFILE is raised to the hard limit in every process.

Run: `python -m bench.connections --counts 1000,10000 --targets chat,baseline`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.stack import ROOT, Proc, Stack, shown
from bench.util import (
    free_port,
    install_uvloop,
    load_average,
    quick_mode,
    raise_nofile,
    rss_bytes,
    wait_for_port,
)

__all__ = ["ScaleResult", "main", "measure"]

ROOM_SIZE = 25
PER_WORKER = 2500


@dataclass
class ScaleResult:
    target: str
    connections: int
    open_s: float  # from starting the clients to every connection having entered its room
    rss_before: int
    rss_after: int
    per_connection: float  # bytes: (rss_after - rss_before) / connections
    server_reports: int | None  # the chat's own `chat_connections` gauge, if it has one
    load: tuple[float, float, float]


# --- client worker -----------------------------------------------------------------------------


async def _open_one(url: str, source: str, room: str, user: str) -> ClientConnection:
    for attempt in range(5):
        try:
            ws = await connect(
                url,
                max_queue=None,
                compression=None,
                open_timeout=60,
                ping_interval=None,
                local_addr=(source, 0),
            )
            break
        except (OSError, TimeoutError):
            if attempt == 4:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
    await ws.send(json.dumps({"op": "enter", "room": room, "user": user}))
    while True:
        frame = json.loads(await ws.recv())
        if frame.get("op") == "entered":
            return ws
        if frame.get("op") == "error":
            raise RuntimeError(f"{user}@{room}: {frame}")


async def _worker(url: str, source: str, first: int, count: int, hold_s: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    t0 = time.perf_counter()
    conns: list[ClientConnection] = []
    batch = 200
    for start in range(first, first + count, batch):
        indices = range(start, min(start + batch, first + count))
        conns += await asyncio.gather(
            *(_open_one(url, source, f"c-{i // ROOM_SIZE}", f"u{i % ROOM_SIZE}") for i in indices)
        )
    print(json.dumps({"ready": len(conns), "seconds": time.perf_counter() - t0}), flush=True)
    # The connections stay idle (the library answers pings) until told to stop.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), hold_s)
    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)


# --- orchestration -----------------------------------------------------------------------------


def _wait_ready(workers: list[Proc], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(workers)
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError("clients did not open their connections in time")
        for w in list(pending):
            if '"ready"' in w.tail():
                pending.remove(w)
            elif not w.alive():
                raise RuntimeError(f"{w.name} exited:\n{w.tail()}")
        time.sleep(0.05)


def _gauge(port: int) -> int | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith("chat_connections "):
            return int(float(line.split()[1]))
    return None


def measure(target: str, n: int, logs: Path, settle_s: float = 3.0) -> ScaleResult:
    load = load_average()
    with Stack(logs / f"{target}-{n}") as stack:
        if target == "baseline":
            port = free_port()
            server = stack.python("baseline", "bench.baseline_server", "--port", str(port))
            wait_for_port(port)
            url = f"ws://127.0.0.1:{port}/"
        else:
            stack.nats()
            server, port = stack.service(
                "chat",
                CHAT_RATE_LIMIT="0",
                CHAT_HOST_CONNECTIONS="0",
                CHAT_HOST_ROOMS_PER_MINUTE="0",
                CHAT_ROOM_LIMIT=str(ROOM_SIZE),
            )
            url = f"ws://127.0.0.1:{port}/ws"
        time.sleep(settle_s)
        rss_before = rss_bytes(server.pid)
        workers_n = max(1, math.ceil(n / PER_WORKER))
        share = math.ceil(n / workers_n)
        t0 = time.perf_counter()
        workers = []
        for k in range(workers_n):
            first = k * share
            count = min(share, n - first)
            workers.append(
                stack.python(
                    f"clients-{k}",
                    "bench.connections",
                    "--worker",
                    url,
                    f"127.0.0.{2 + k}",
                    str(first),
                    str(count),
                )
            )
        _wait_ready(workers, timeout=600)
        open_s = time.perf_counter() - t0
        time.sleep(settle_s)
        rss_after = rss_bytes(server.pid)
        reports = _gauge(port) if target == "chat" else None
    return ScaleResult(
        target,
        n,
        round(open_s, 2),
        rss_before,
        rss_after,
        round((rss_after - rss_before) / n, 1),
        reports,
        load,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="idle websocket connections: memory and time")
    parser.add_argument("--worker", nargs=4, metavar=("URL", "SOURCE", "FIRST", "COUNT"))
    parser.add_argument("--hold", type=float, default=600.0, help="worker: longest idle hold")
    default_counts = "1000" if quick_mode() else "10000"
    parser.add_argument("--counts", default=os.environ.get("CONN_COUNTS", default_counts))
    parser.add_argument("--targets", default=os.environ.get("CONN_TARGETS", "chat,baseline"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    raise_nofile()
    if args.worker:
        install_uvloop()
        url, source, first, count = args.worker
        asyncio.run(_worker(url, source, int(first), int(count), args.hold))
        return 0
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or ROOT / "var" / "bench" / f"connections-{stamp}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    logs = out.parent / f"logs-conn-{stamp}"
    print(f"connection scale: nofile {raise_nofile()}; load {load_average()}", flush=True)
    for n in [int(c) for c in args.counts.split(",")]:
        for target in [t.strip() for t in args.targets.split(",") if t.strip()]:
            r = measure(target, n, logs)
            with out.open("a") as f:
                f.write(json.dumps(asdict(r)) + "\n")
            print(
                f"{target:<9} {n:>6} connections: opened and entered in {r.open_s:6.2f}s, "
                f"RSS {r.rss_before / 2**20:.1f} -> {r.rss_after / 2**20:.1f} MiB, "
                f"{r.per_connection / 1024:.1f} KiB a connection"
                + (f" (server counts {r.server_reports})" if r.server_reports is not None else "")
                + f"; load {r.load[0]:.2f}",
                flush=True,
            )
    print(f"results: {shown(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
