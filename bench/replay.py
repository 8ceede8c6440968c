"""Replay benchmark: how fast a fresh registration made with `since` receives a room's held
events (docs/registry-api.md, "Replay").

    .venv/bin/python -m bench.replay [--events 100000] [--repeat 3]

Starts nats-server, the registry and one dispatcher as processes, stores `--events` chat events
of one room in JetStream, then, `--repeat` times, registers a new callback URL for that room
through the registry with `since` older than the stream, and measures from the 201 to the last
held event answered at the callback (a receiver in this process that answers 200 at once, with
keep-alive): events per second, and the dispatcher's CPU time per event. Each run has a URL of
its own, so each replays everything. Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass

import httpx

from bench.dispatcher_bench import Sink, cpu_seconds, feed, free_port, system, until
from bench.util import machine
from shared.bus import connect
from shared.callback_receiver import ReceiverProtocol
from shared.settings import CommonSettings

__all__ = ["main"]

TOKEN = "bench-replay-token-0123456789abcdef0123"
ROOM = "Replay"
SINCE = "2000-01-01T00:00:00Z"  # older than anything held: replay from the oldest


@dataclass
class Run:
    per_s: float
    cpu_us: float  # dispatcher CPU per event
    first_ms: float  # 201 to the first replayed event at the callback


async def replay(
    api: httpx.AsyncClient, sink: Sink, url: str, events: int, dispatcher_pid: int
) -> Run:
    sink.reset()
    cpu0 = cpu_seconds(dispatcher_pid)
    answer = await api.post("/v1/subscriptions", json={"room": ROOM, "url": url, "since": SINCE})
    answered = time.perf_counter()
    if answer.status_code != 201 or answer.json()["replay_from"] is None:
        raise RuntimeError(f"registering with since: {answer.status_code} {answer.text}")
    await until(lambda: sink.count >= events, within_s=max(60.0, events / 100))
    if sink.count < events:
        raise RuntimeError(f"replayed {sink.count} of {events} events")
    elapsed = sink.last - answered
    cpu = cpu_seconds(dispatcher_pid) - cpu0
    return Run(events / elapsed, 1e6 * cpu / events, 1000 * (sink.first - answered))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="held events to replay")
    parser.add_argument("--repeat", type=int, default=3, help="fresh registrations, one by one")
    args = parser.parse_args()
    sink = Sink()
    port = free_port()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ReceiverProtocol(sink), "127.0.0.1", port)
    sink_url = f"http://127.0.0.1:{port}/replay"
    runs: list[Run] = []
    try:
        with system() as procs:
            _, registry = procs.service(
                "registry", REGISTRY_API_TOKENS=TOKEN, EVENT_CALLBACK_PREFIX=sink_url
            )
            dispatcher, _ = procs.service("dispatcher")
            bus = await connect(CommonSettings(nats_url=procs.nats_url), "bench")
            try:
                await feed(bus, ROOM, args.events)
            finally:
                await bus.close()
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient(base_url=registry, headers=headers, timeout=30) as api:
                for n in range(args.repeat):
                    url = f"{sink_url}/{n}"
                    runs.append(await replay(api, sink, url, args.events, dispatcher.pid))
                    print(runs[-1], file=sys.stderr)
    finally:
        server.close()
    print(machine() + "\n")
    print(
        "| held events | replayed / s (median of runs) | dispatcher CPU / event | 201 to first "
        "event | runs |"
    )
    print("| ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {args.events:,} | {statistics.median(r.per_s for r in runs):,.0f} "
        f"| {statistics.median(r.cpu_us for r in runs):.0f} µs "
        f"| {statistics.median(r.first_ms for r in runs):.0f} ms | {len(runs)} |"
    )


if __name__ == "__main__":
    asyncio.run(main())
