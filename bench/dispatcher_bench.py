"""Dispatcher benchmark: deliveries per second to 1 and to 100 callbacks, per HTTP transport,
and the latency from a chat message sent on a websocket to its XML received, at 500 events/s.

    .venv/bin/python bench/dispatcher_bench.py [--repeat 3] [--transports aiohttp,httpx]

Starts its own nats-server (JetStream, in a temporary directory, on free ports), the dispatcher
(and, for the latency run, the chat service) as processes, exactly as in production, and a small
asyncio HTTP/1.1 callback receiver in this process that answers 200 at once with keep-alive.
Prints a Markdown table (medians over `--repeat` runs) for docs/benchmarks.md, and the machine.

Figures taken on a shared machine are noisy: compare the ratios within one run of this command,
and the dispatcher's own CPU time per delivery (read from /proc), rather than absolute rates.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.util import machine  # noqa: E402
from shared.bus import Bus, connect  # noqa: E402
from shared.callback_receiver import ReceiverProtocol  # noqa: E402
from shared.codec import parse  # noqa: E402
from shared.events import ChatEvent, to_json  # noqa: E402
from shared.nats_binary import nats_server_binary, nats_server_env  # noqa: E402
from shared.settings import CommonSettings  # noqa: E402
from shared.subjects import event_subject  # noqa: E402
from shared.subscriptions import (  # noqa: E402
    create_subscription,
    delete_subscription,
    list_subscriptions,
)

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(url)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# -- the callback receiver -------------------------------------------------------------------


@dataclass
class Sink:
    """Counts POSTs; for latency runs keeps each body with its arrival time, to be parsed
    after the run (parsing here would slow the receiver down and inflate the latency)."""

    count: int = 0
    first: float = 0.0
    last: float = 0.0
    bodies: list[tuple[float, bytes]] = field(default_factory=list)
    keep_bodies: bool = False

    def reset(self, keep_bodies: bool = False) -> None:
        self.count, self.first, self.last = 0, 0.0, 0.0
        self.bodies = []
        self.keep_bodies = keep_bodies

    def got(self, body: bytes) -> None:
        now = time.perf_counter()
        if self.count == 0:
            self.first = now
        self.count += 1
        self.last = now
        if self.keep_bodies:
            self.bodies.append((now, body))

    def arrivals(self) -> dict[str, float]:
        """Chat message text → when its XML arrived."""
        out = {}
        for when, body in self.bodies:
            event = parse(body)
            if isinstance(event, ChatEvent):
                out[event.message] = when
        return out


# -- processes -------------------------------------------------------------------------------


class Processes:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.nats_port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.nats_port}"

    def nats(self) -> None:
        exe = nats_server_binary()
        args = [exe, "-js", "-a", "127.0.0.1", "-p", str(self.nats_port), "-sd", str(self.tmp)]
        self.procs.append(
            subprocess.Popen(
                args, env=nats_server_env(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
            )
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.nats_port)) == 0:
                    return
            time.sleep(0.05)
        raise TimeoutError("nats-server")

    def service(self, name: str, **env: str) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        port_var = {
            "dispatcher": "DISPATCHER_PORT",
            "chat": "CHAT_PORT",
            "registry": "REGISTRY_PORT",
        }[name]
        full_env = {
            **os.environ,
            "NATS_URL": self.nats_url,
            "BIND_HOST": "127.0.0.1",
            port_var: str(port),
            "LOG_LEVEL": "WARNING",
            "CHAT_RATE_LIMIT": "0",
            "CHAT_HOST_CONNECTIONS": "0",
            "CHAT_HOST_ROOMS_PER_MINUTE": "0",
            **env,
        }
        log = (self.tmp / f"{name}-{port}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=log,
        )
        self.procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/readyz")
        return proc, base

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)


@contextlib.contextmanager
def system() -> Iterator[Processes]:
    with tempfile.TemporaryDirectory(prefix="volano-bench-") as tmp:
        procs = Processes(Path(tmp))
        try:
            procs.nats()
            yield procs
        finally:
            procs.stop_all()


# -- runs ------------------------------------------------------------------------------------


async def feed(bus: Bus, room: str, count: int) -> None:
    for base in range(0, count, 500):
        futures = [
            await bus.js.publish_async(
                event_subject(room, "chat"),
                to_json(ChatEvent(room, "bench", f"m{n}")),
                headers={"Nats-Msg-Id": f"{room}-{n}"},
            )
            for n in range(base, min(count, base + 500))
        ]
        await asyncio.gather(*futures)


async def until(done: Callable[[], bool], within_s: float, step_s: float = 0.05) -> None:
    """Poll `done` (the sink is counted in callbacks, so there is no event to wait on)."""
    deadline = time.monotonic() + within_s
    while not done() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(step_s)


async def clear(bus: Bus) -> None:
    for sub in await list_subscriptions(bus):
        await delete_subscription(bus, sub.id)


@dataclass
class Throughput:
    per_s: float
    cpu_ms: float  # dispatcher CPU per delivery


async def throughput(
    bus: Bus, sink: Sink, sink_url: str, pid: int, callbacks: int, events: int, tag: str
) -> Throughput:
    """`callbacks` registrations on one room (one host, a path each), `events` fed at once."""
    await clear(bus)
    room = f"bench-{tag}-{time.monotonic_ns()}"
    for n in range(callbacks):
        await create_subscription(bus, room, f"{sink_url}/{n}")
    await asyncio.sleep(1.5)  # the dispatcher sees the registrations and binds
    sink.reset()
    total = callbacks * events
    cpu0 = cpu_seconds(pid)
    await feed(bus, room, events)
    await until(lambda: sink.count >= total, 300)
    cpu = cpu_seconds(pid) - cpu0
    if sink.count < total:
        raise RuntimeError(f"only {sink.count} of {total} delivered")
    elapsed = sink.last - sink.first
    return Throughput(total / elapsed, 1000 * cpu / total)


@dataclass
class Latency:
    count: int
    achieved: float  # events a second actually sent
    total: tuple[float, float]  # p50, p99 ms: websocket send → XML received
    dispatch: tuple[float, float]  # p50, p99 ms: chat's echo to the sender → XML received
    cpu_ms: dict[str, float]  # CPU per message of each process


def p50_p99(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), statistics.quantiles(values, n=100)[98]


async def latency(
    ws_url: str,
    bus: Bus,
    sink: Sink,
    sink_url: str,
    rate: int,
    seconds: float,
    pids: dict[str, int],
) -> Latency:
    """Chat messages at `rate` a second over 5 rooms (one client and one registration each).
    Measured from the websocket send to the XML received, and from the chat's echo of the
    message to its sender (the message is accepted and in JetStream) to the XML received."""
    await clear(bus)
    rooms = [f"lat-{n}-{time.monotonic_ns()}" for n in range(5)]
    for n, room in enumerate(rooms):
        await create_subscription(bus, room, f"{sink_url}/{n}")
    await asyncio.sleep(1.5)
    sink.reset(keep_bodies=True)
    sent: dict[str, float] = {}
    accepted: dict[str, float] = {}
    per_room = rate / len(rooms)
    count = int(per_room * seconds)
    cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    cpu0["bench"] = time.process_time()

    async def client(n: int, room: str) -> None:
        frames: list[tuple[float, str | bytes]] = []
        async with websockets.connect(ws_url, max_queue=None) as ws:
            await ws.send(json.dumps({"op": "enter", "room": room, "user": f"u{n}"}))
            while json.loads(await ws.recv()).get("op") != "entered":
                pass

            async def drain() -> None:
                async for frame in ws:
                    frames.append((time.perf_counter(), frame))

            reader = asyncio.create_task(drain())
            start = time.perf_counter()
            for i in range(count):
                delay = start + i / per_room - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                text = f"r{n}-{i}"
                sent[text] = time.perf_counter()
                await ws.send(json.dumps({"op": "chat", "room": room, "message": text}))
            await until(lambda: len(frames) >= count, 60)  # one echo per message
            reader.cancel()
            for when, frame in frames:
                data = json.loads(frame)
                if data.get("op") == "chat":
                    accepted[data["message"]] = when

    await asyncio.gather(*(client(n, room) for n, room in enumerate(rooms)))
    achieved = len(sent) / (max(sent.values()) - min(sent.values()))
    await until(lambda: sink.count >= len(sent) + 2 * len(rooms), 60)  # + create, enter
    cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
    cpu["bench"] = time.process_time() - cpu0["bench"]
    arrivals = sink.arrivals()
    if len(arrivals) < len(sent):
        raise RuntimeError(f"only {len(arrivals)} of {len(sent)} chat messages arrived")
    total = [1000 * (arrivals[k] - t) for k, t in sent.items()]
    dispatch = [1000 * (arrivals[k] - t) for k, t in accepted.items()]
    return Latency(
        len(sent),
        achieved,
        p50_p99(total),
        p50_p99(dispatch),
        {name: 1000 * c / len(sent) for name, c in cpu.items()},
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--transports", default="httpx,wire")
    parser.add_argument("--events-one", type=int, default=2000, help="events to 1 callback")
    parser.add_argument("--events-many", type=int, default=100, help="events to each of 100")
    parser.add_argument("--rate", type=int, default=500, help="chat events a second (latency)")
    parser.add_argument("--baseline-rate", type=int, default=100, help="latency baseline")
    parser.add_argument("--seconds", type=float, default=10, help="latency run length")
    parser.add_argument("--no-latency", action="store_true")
    args = parser.parse_args()
    transports = args.transports.split(",")

    sink = Sink()
    loop = asyncio.get_running_loop()
    sink_port, close_port = free_port(), free_port()
    server = await loop.create_server(lambda: ReceiverProtocol(sink), "127.0.0.1", sink_port)
    closing = await loop.create_server(
        lambda: ReceiverProtocol(sink, close=True), "127.0.0.1", close_port
    )
    keep_url = f"http://127.0.0.1:{sink_port}/events"
    close_url = f"http://127.0.0.1:{close_port}/events"

    rows: list[tuple[str, str, float, float]] = []
    lat: dict[int, Latency] = {}
    with system() as procs:
        bus = await connect(CommonSettings(nats_url=procs.nats_url), "bench")
        try:
            for transport in transports:
                proc, _ = procs.service("dispatcher", DISPATCH_HTTP_TRANSPORT=transport)
                cases = [
                    ("1 callback", keep_url, 1, args.events_one),
                    ("100 callbacks", keep_url, 100, args.events_many),
                    ("1 callback, no keep-alive", close_url, 1, args.events_one // 2),
                ]
                for name, url, callbacks, events in cases:
                    results = []
                    for _ in range(args.repeat):
                        results.append(
                            await throughput(bus, sink, url, proc.pid, callbacks, events, transport)
                        )
                        print(f"{transport:8} {name:26} {results[-1]}", file=sys.stderr)
                    rows.append(
                        (
                            transport,
                            name,
                            statistics.median(r.per_s for r in results),
                            statistics.median(r.cpu_ms for r in results),
                        )
                    )
                if transport == transports[-1] and not args.no_latency:
                    chat_proc, chat = procs.service("chat")
                    ws_url = chat.replace("http", "ws") + "/ws"
                    pids = {"chat": chat_proc.pid, "dispatcher": proc.pid}
                    for rate in sorted({args.baseline_rate, args.rate}):
                        lat[rate] = await latency(
                            ws_url, bus, sink, keep_url, rate, args.seconds, pids
                        )
                        print(f"latency at {rate}/s: {lat[rate]}", file=sys.stderr)
                procs.stop(proc)
            await clear(bus)
        finally:
            await bus.close()
            server.close()
            closing.close()

    print(machine())
    print(f"median of {args.repeat} runs\n")
    print("| transport | case | deliveries/s | dispatcher CPU ms/delivery | vs httpx |")
    print("| --- | --- | ---: | ---: | ---: |")
    base = {name: per_s for t, name, per_s, _ in rows if t == "httpx"}
    for transport, name, per_s, cpu_ms in rows:
        ratio = f"{per_s / base[name]:.2f}x" if name in base else "-"
        print(f"| {transport} | {name} | {per_s:.0f} | {cpu_ms:.2f} | {ratio} |")
    if lat:
        print(
            f"\nchat message sent on a websocket → its XML received by the callback; 5 rooms "
            f"with one client and one callback each, {args.seconds:.0f} s a rate, transport "
            f'{transports[-1]}. "dispatch" starts when the chat echoes the message to its '
            "sender (accepted, in JetStream):\n"
        )
        print(
            "| offered events/s | achieved | p50 ms | p99 ms | dispatch p50 ms | dispatch p99 ms "
            "| CPU ms/event: chat | dispatcher | this script |"
        )
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for rate, r in sorted(lat.items()):
            print(
                f"| {rate} | {r.achieved:.0f} | {r.total[0]:.1f} | {r.total[1]:.1f} "
                f"| {r.dispatch[0]:.1f} | {r.dispatch[1]:.1f} | {r.cpu_ms['chat']:.2f} "
                f"| {r.cpu_ms['dispatcher']:.2f} | {r.cpu_ms['bench']:.2f} |"
            )


if __name__ == "__main__":
    asyncio.run(main())
