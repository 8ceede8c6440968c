"""Scale benchmark: the delivery path with N registrations (two per room), on a fresh system
each, for N in `--counts` (default 1,000, 10,000 and 100,000).

    .venv/bin/python -m bench.scale [--counts 1000,10000,100000]

For each N it starts nats-server, the registry and one dispatcher as processes, and measures:
registering N callbacks through the registry's API at 20 requests in flight (p50/p99 of a
POST); the consumers of every stream before and after; the idle CPU of nats-server and the
dispatcher (20 s with nothing happening) and their memory; the latency from an event stored in
JetStream to its XML at the callback at 100 events/s over random registered rooms (10 s); how
long the dispatcher takes to stop on SIGTERM; and, after a restart, how long until an event
published every 50 ms reaches its callback again. Prints one Markdown table for
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
import nats

from bench.dispatcher_bench import (
    Processes,
    Sink,
    cpu_seconds,
    free_port,
    system,
    until,
)
from bench.util import machine, rss_bytes
from services.dispatcher.transport import WireTransport
from shared.bus import Bus, connect
from shared.callback_receiver import ReceiverProtocol
from shared.events import ChatEvent, to_json
from shared.settings import CommonSettings
from shared.subjects import event_subject

__all__ = ["main"]

TOKEN = "bench-scale-token-0123456789abcdef0123"
IN_FLIGHT = 20
IDLE_S = 20.0
RATE = 100
LATENCY_S = 10.0


@dataclass
class Row:
    count: int
    post_p50_ms: float
    post_p99_ms: float
    register_s: float
    consumers_before: int
    consumers_after: int
    idle_nats_pct: float
    idle_dispatcher_pct: float
    nats_rss_mb: float
    dispatcher_rss_mb: float
    latency_p50_ms: float
    latency_p99_ms: float
    stop_s: float
    restart_s: float


async def consumers(url: str) -> int:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        streams = await js.streams_info()
        return sum([len(await js.consumers_info(str(s.config.name))) for s in streams])
    finally:
        await nc.close()


async def register(base: str, sink_url: str, count: int) -> tuple[list[float], float]:
    """POST `count` registrations (rooms r0..r{count/2}, two URLs each) at IN_FLIGHT at a
    time; their latencies. The requests go through the dispatcher's own transport: a client
    as light as the receiver, so that the registry, not this script, is what is measured."""
    times: list[float] = []
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    transport = WireTransport()
    numbers = iter(range(count))
    started = time.perf_counter()

    async def worker() -> None:
        for n in numbers:
            body = json.dumps({"room": f"r{n // 2}", "url": f"{sink_url}/{n % 2}"}).encode()
            request = httpx.Request(
                "POST", base + "/v1/subscriptions", content=body, headers=headers
            )
            t0 = time.perf_counter()
            answer = await transport.handle_async_request(request)
            times.append(time.perf_counter() - t0)
            if answer.status_code != 201:
                raise RuntimeError(f"registration {n}: {answer.status_code}")

    try:
        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    finally:
        await transport.aclose()
    return times, time.perf_counter() - started


async def metric(base: str, name: str) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(base + "/metrics")).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return -1.0


async def publish(bus: Bus, room: str, text: str) -> None:
    await bus.js.publish(event_subject(room, "chat"), to_json(ChatEvent(room, "bench", text)))


async def latency(bus: Bus, sink: Sink, rooms: int) -> list[float]:
    """Events at RATE a second to random rooms; ms from stored (acked) to XML received."""
    sink.reset(keep_bodies=True)
    stored: dict[str, float] = {}
    start = time.perf_counter()
    total = int(RATE * LATENCY_S)
    for n in range(total):
        delay = start + n / RATE - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        text = f"lat{n}"
        await publish(bus, f"r{random.randrange(rooms)}", text)
        stored[text] = time.perf_counter()
    await until(lambda: sink.count >= 2 * total, 60)  # two registrations a room
    arrivals = sink.arrivals()
    return [1000 * (arrivals[k] - t) for k, t in stored.items() if k in arrivals]


async def restart(
    procs: Processes, bus: Bus, sink: Sink, proc: subprocess.Popen[bytes]
) -> tuple[float, float]:
    """(seconds from SIGTERM to exit, seconds from the new process's start to the first
    event delivered again)."""
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    await asyncio.to_thread(proc.wait, 60)
    stop_s = time.perf_counter() - t0
    sink.reset(keep_bodies=True)
    stop = asyncio.Event()

    async def ticker() -> None:
        n = 0
        while not stop.is_set():
            await publish(bus, "r0", f"tick{n}")
            n += 1
            await asyncio.sleep(0.05)

    ticking = asyncio.create_task(ticker())
    started = time.perf_counter()
    await asyncio.to_thread(procs.service, "dispatcher")
    await until(lambda: sink.count > 0, 120, step_s=0.02)
    restart_s = time.perf_counter() - started
    stop.set()
    await ticking
    return stop_s, restart_s


async def one(count: int, sink: Sink, sink_url: str) -> Row:
    with system() as procs:
        _, registry = procs.service(
            "registry", REGISTRY_API_TOKENS=TOKEN, EVENT_CALLBACK_PREFIX=sink_url
        )
        dispatcher, dispatcher_url = procs.service("dispatcher")
        nats_pid = procs.procs[0].pid
        before = await consumers(procs.nats_url)
        times, register_s = await register(registry, sink_url, count)
        deadline = time.monotonic() + 300
        while await metric(dispatcher_url, "dispatcher_registrations") < count:
            if time.monotonic() > deadline:
                raise RuntimeError("the dispatcher did not take every registration")
            await asyncio.sleep(0.5)
        after = await consumers(procs.nats_url)
        await asyncio.sleep(5)  # settle
        idle0 = {pid: cpu_seconds(pid) for pid in (nats_pid, dispatcher.pid)}
        await asyncio.sleep(IDLE_S)
        idle = {pid: 100 * (cpu_seconds(pid) - c) / IDLE_S for pid, c in idle0.items()}
        bus = await connect(CommonSettings(nats_url=procs.nats_url), "bench")
        try:
            lat = await latency(bus, sink, count // 2)
            rss = {pid: rss_bytes(pid) / 2**20 for pid in (nats_pid, dispatcher.pid)}
            stop_s, restart_s = await restart(procs, bus, sink, dispatcher)
        finally:
            await bus.close()
    quantiles = statistics.quantiles(times, n=100)
    lat_q = statistics.quantiles(lat, n=100)
    return Row(
        count,
        1000 * statistics.median(times),
        1000 * quantiles[98],
        register_s,
        before,
        after,
        idle[nats_pid],
        idle[dispatcher.pid],
        rss[nats_pid],
        rss[dispatcher.pid],
        statistics.median(lat),
        lat_q[98],
        stop_s,
        restart_s,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", default="1000,10000,100000")
    args = parser.parse_args()
    sink = Sink()
    port = free_port()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ReceiverProtocol(sink), "127.0.0.1", port)
    sink_url = f"http://127.0.0.1:{port}/events"
    rows = []
    try:
        for count in (int(c) for c in args.counts.split(",")):
            rows.append(await one(count, sink, sink_url))
            print(rows[-1], file=sys.stderr)
    finally:
        server.close()
    print(machine() + "\n")
    print(
        "| registrations | POST p50 / p99 ms (20 in flight) | registered in | consumers before "
        "/ after | idle CPU nats-server / dispatcher | RSS nats-server / dispatcher | event "
        "latency p50 / p99 at 100/s | SIGTERM to exit | restart to delivering |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r.count:,} | {r.post_p50_ms:.1f} / {r.post_p99_ms:.1f} | {r.register_s:.0f} s "
            f"| {r.consumers_before} / {r.consumers_after} | {r.idle_nats_pct:.1f} % / "
            f"{r.idle_dispatcher_pct:.1f} % | {r.nats_rss_mb:.0f} / {r.dispatcher_rss_mb:.0f} MB "
            f"| {r.latency_p50_ms:.1f} / {r.latency_p99_ms:.1f} ms | {r.stop_s:.1f} s "
            f"| {r.restart_s:.1f} s |"
        )


if __name__ == "__main__":
    asyncio.run(main())
