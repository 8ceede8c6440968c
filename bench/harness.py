"""`make bench`: VolanoMark against the baseline and our chat, side by side, alternating.

For each number of rooms, `--pairs` times: one run of every mode in turn, each on a fresh set of
processes (so one run's leftovers never slow the next):

- `baseline`: `bench.baseline_server`, the `websockets` library alone;
- `nats`: nats-server + services/chat, every event published to JetStream, no callbacks;
- `callbacks`: that plus registry, dispatcher and a counting callback receiver, one
  registration per room, so every event is delivered as XML; the dispatcher's lag is read from
  JetStream when the client finishes;
- `spread`: nats-server + two chat replicas, the users of every room dealt to both in turn (so
  each room spans them), no callbacks; after the client, `bench.replica_latency` measures a chat
  from a member on one replica to a member on the other, at 100 messages a second.

The client (`bench.volanomark`) is one process; the server under test gets the other core.
Prints every run, then medians and the ratio project / baseline; writes JSON lines to
`var/bench/`, and with `--plot` a PNG of score against rooms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.lag import dispatcher_lag
from bench.replica_latency import cross_replica_latency
from bench.stack import ROOT, Proc, Stack, cpu_seconds, shown
from bench.util import free_port, load_average, quick_mode, raise_nofile, wait_for_port

__all__ = ["MODES", "RunResult", "main", "run_once"]

MODES = ("baseline", "nats", "callbacks", "spread")
PROJECT_MODES = ("nats", "callbacks", "spread")


@dataclass
class RunResult:
    mode: str
    rooms: int
    pair: int
    score: float
    seconds: float
    sent: int
    received: int
    connect_s: float
    load: tuple[float, float, float]  # load average when the run started
    cpu_s: dict[str, float]  # CPU seconds of each process during the run
    lag: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)
    latency: dict[str, Any] | None = None  # `spread`: a chat from one replica to the other


def _client(
    stack: Stack, url: str, rooms: int, users: int, messages: int, prefix: str
) -> dict[str, Any]:
    proc = stack.python(
        f"client-{prefix}",
        "bench.volanomark",
        "--url",
        url,
        "--rooms",
        str(rooms),
        "--users",
        str(users),
        "--messages",
        str(messages),
        "--room-prefix",
        prefix,
    )
    proc.popen.wait(900)
    lines = [line for line in proc.tail().splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"client printed no result:\n{proc.tail()}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _register(registry_port: int, token: str, rooms: list[str], url: str) -> None:
    with httpx.Client(
        base_url=f"http://127.0.0.1:{registry_port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ) as client:
        for room in rooms:
            response = client.post("/v1/subscriptions", json={"room": room, "url": url})
            response.raise_for_status()


def run_once(mode: str, rooms: int, users: int, messages: int, pair: int, logs: Path) -> RunResult:
    prefix = f"{mode[0]}{pair}r{rooms}"
    load = load_average()
    with Stack(logs / f"{prefix}") as stack:
        watched: dict[str, Proc] = {}
        receiver_port = 0
        if mode == "baseline":
            port = free_port()
            watched["server"] = stack.python(
                "baseline", "bench.baseline_server", "--port", str(port)
            )
            wait_for_port(port)
            url = f"ws://127.0.0.1:{port}/"
        else:
            watched["nats"] = stack.nats()
            if mode == "callbacks":
                receiver_port = free_port()
                watched["receiver"] = stack.python(
                    "receiver", "shared.callback_receiver", "--count", "--port", str(receiver_port)
                )
                wait_for_port(receiver_port)
                prefix_url = f"http://127.0.0.1:{receiver_port}/"
                watched["registry"], registry_port = stack.service(
                    "registry", EVENT_CALLBACK_PREFIX=prefix_url
                )
                watched["dispatcher"], _ = stack.service("dispatcher")
                _register(
                    registry_port,
                    stack.token,
                    [f"{prefix}-{r}" for r in range(rooms)],
                    prefix_url + "events",
                )
            chat_env = {
                "CHAT_RATE_LIMIT": "0",
                "CHAT_HOST_CONNECTIONS": "0",
                "CHAT_HOST_ROOMS_PER_MINUTE": "0",
                "CHAT_ROOM_LIMIT": str(max(25, users)),
                "CHAT_DYNAMIC_ROOMS": "true",
            }
            watched["server"], chat_port = stack.service("chat", **chat_env)
            url = f"ws://127.0.0.1:{chat_port}/ws"
            if mode == "spread":
                watched["server2"], other_port = stack.service("chat", **chat_env)
                url += f",ws://127.0.0.1:{other_port}/ws"
        before = {name: cpu_seconds(p.pid) for name, p in watched.items()}
        out = _client(stack, url, rooms, users, messages, prefix)
        cpu = {name: round(cpu_seconds(p.pid) - before[name], 2) for name, p in watched.items()}
        cpu["client"] = round(float(out["client_cpu_s"]), 2)
        lag = latency = None
        if mode == "spread":
            first, second = url.split(",")
            latency = asyncio.run(cross_replica_latency(first, second, 100.0, 10.0))
        if mode == "callbacks":
            posts = httpx.get(f"http://127.0.0.1:{receiver_port}/count", timeout=5).text
            events = rooms * (1 + users + users * messages)
            lag = asyncio.run(dispatcher_lag(stack.nats_url, events, int(posts)))
    return RunResult(
        mode,
        rooms,
        pair,
        round(float(out["score"]), 1),
        round(float(out["seconds"]), 3),
        int(out["sent"]),
        int(out["received"]),
        round(float(out["connect_s"]), 3),
        load,
        cpu,
        lag,
        list(out["errors"]),
        latency,
    )


def summarise(results: list[RunResult], modes: list[str]) -> str:
    lines = []
    for rooms in sorted({r.rooms for r in results}):
        at = [r for r in results if r.rooms == rooms and not r.errors]
        medians = {
            m: statistics.median([r.score for r in at if r.mode == m])
            for m in modes
            if any(r.mode == m for r in at)
        }
        lines.append(f"rooms={rooms}")
        base = medians.get("baseline")
        for mode, med in medians.items():
            of_mode = [r for r in at if r.mode == mode]
            runs = ", ".join(f"{r.score:,.0f}" for r in of_mode)
            ratio = f"  ratio/baseline {med / base:.2f}" if base and mode != "baseline" else ""
            # server CPU per chat message sent (each is fanned out to the whole room)
            us = statistics.median(
                1e6 * (r.cpu_s["server"] + r.cpu_s.get("server2", 0.0)) / max(1, r.sent)
                for r in of_mode
            )
            lines.append(
                f"  {mode:<10} median {med:>9,.0f} msg/s{ratio}   server CPU {us:,.0f} us "
                f"per chat message   runs: {runs}"
            )
        for r in at:
            if r.latency is not None:
                lines.append(
                    f"  spread pair {r.pair}: a chat from one replica to the other at "
                    f"{r.latency['rate']:g}/s: p50 {r.latency['p50_ms']} ms, "
                    f"p99 {r.latency['p99_ms']} ms, max {r.latency['max_ms']} ms"
                )
            if r.lag is not None:
                lines.append(
                    f"  callbacks pair {r.pair}: {r.lag['events']:,} events during the run "
                    f"(create, enter, chat); when the client finished, {r.lag['delivered']:,} "
                    f"delivered, {r.lag['undelivered']:,} undelivered "
                    f"(stream holds {r.lag['stream_messages']:,}; exits included)"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(description="VolanoMark: project vs baseline")
    parser.add_argument("--rooms", default=env("BENCH_ROOMS", "10"), help="e.g. 10,20,50")
    parser.add_argument("--pairs", type=int, default=int(env("BENCH_PAIRS", "3")))
    parser.add_argument("--modes", default=env("BENCH_MODES", ",".join(MODES)))
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--messages", type=int, default=int(env("BENCH_MESSAGES", "100")))
    parser.add_argument("--quick", action="store_true", default=quick_mode())
    parser.add_argument("--out", type=Path, default=None, help="JSON lines file")
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rooms, args.pairs, args.messages = "2", 1, 50
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := set(modes) - set(MODES):
        parser.error(f"unknown modes {sorted(unknown)}; choose from {MODES}")
    room_counts = [int(r) for r in str(args.rooms).split(",")]
    raise_nofile()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = ROOT / "var" / "bench"
    out = args.out or out_dir / f"volanomark-{stamp}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    logs = out_dir / f"logs-{stamp}"
    print(
        f"VolanoMark: rooms {room_counts} x {args.users} users x {args.messages} messages, "
        f"{args.pairs} pairs of {modes}; nproc {os.cpu_count()}; load {load_average()}",
        flush=True,
    )
    results: list[RunResult] = []
    for rooms in room_counts:
        for pair in range(1, args.pairs + 1):
            for mode in modes:
                result = run_once(mode, rooms, args.users, args.messages, pair, logs)
                results.append(result)
                with out.open("a") as f:
                    f.write(json.dumps(asdict(result)) + "\n")
                lag = f" lag {result.lag}" if result.lag else ""
                err = f" ERRORS {result.errors}" if result.errors else ""
                print(
                    f"rooms {rooms:>3} pair {pair} {mode:<10} {result.score:>9,.0f} msg/s "
                    f"in {result.seconds:6.2f}s  load {result.load[0]:.2f}  "
                    f"cpu {result.cpu_s}{lag}{err}",
                    flush=True,
                )
    print("\n" + summarise(results, modes))
    print(f"\nresults: {shown(out)}")
    if args.plot:
        from bench.plot import plot

        plot([out], args.plot)
        print(f"plot: {args.plot}")
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
