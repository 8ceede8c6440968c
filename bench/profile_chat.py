"""Profile the chat's hot path under VolanoMark load with py-spy (sampling, `--nonblocking`, so
the chat is never paused), and rank where its time goes.

Starts nats-server and the chat (events to JetStream, no callbacks), attaches
`py-spy record --format raw` to the chat, runs the VolanoMark client, then prints the top
functions by self time and by inclusive time, and a few path categories
(JSON, websocket send, receive, JetStream publish, ...). The raw collapsed stacks are kept in
`var/bench/` (feed them to any flame-graph tool).

Run: `python -m bench.profile_chat --rooms 10 --rate 250`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.stack import ROOT, Stack
from bench.util import raise_nofile

__all__ = ["CATEGORIES", "rank"]

# (label, substrings of a frame "function (file:line)"): a sample counts for the first label
# whose substring occurs anywhere in its stack, most specific first.
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("JetStream publish (nats-py)", ("nats/js/client.py", "nats/aio/client.py")),
    ("JSON encode/decode", ("json/encoder.py", "json/decoder.py", "json/__init__.py")),
    ("prometheus metrics", ("prometheus_client",)),
    (
        "websocket send (uvicorn/websockets)",
        ("send_text", "websockets_impl", "wsproto_impl", "websockets_sansio_impl"),
    ),
    ("ASGI receive / starlette websocket", ("starlette/websockets.py", "starlette/routing.py")),
    ("chat logic (services/chat)", ("services/chat/",)),
]
# Every stack starts in asyncio's runner, so the rest is not split further.
REST = "rest (event loop, asyncio machinery, idle polling)"


def _frames(stack: str) -> list[str]:
    return [f for f in stack.split(";") if f]


def rank(raw: Path, top: int = 25) -> str:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = _frames(stack)
        if frames:
            self_time[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
        for label, needles in CATEGORIES:
            if any(n in stack for n in needles):
                categories[label] += count
                break
        else:
            categories[REST] += count
    if total == 0:
        return "no samples"
    out = [f"{total} samples"]
    out.append("\nby category (first match, most specific first):")
    out += [f"  {100 * c / total:5.1f}%  {label}" for label, c in categories.most_common()]
    out.append(f"\ntop {top} by self time:")
    out += [f"  {100 * c / total:5.1f}%  {f}" for f, c in self_time.most_common(top)]
    out.append(f"\ntop {top} by inclusive time:")
    out += [f"  {100 * c / total:5.1f}%  {f}" for f, c in inclusive.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="py-spy profile of the chat under VolanoMark")
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples a second")
    parser.add_argument("--seconds", type=int, default=40, help="longest py-spy recording")
    parser.add_argument(
        "--blocking",
        action="store_true",
        help="pause the chat for each sample (consistent stacks, slower); default --nonblocking",
    )
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("py-spy not found: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    raise_nofile()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = ROOT / "var" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"profile-chat-{stamp}{'-blocking' if args.blocking else ''}.txt"
    with Stack(out_dir / f"logs-profile-{stamp}") as stack:
        stack.nats()
        chat, port = stack.service(
            "chat",
            CHAT_RATE_LIMIT="0",
            CHAT_HOST_CONNECTIONS="0",
            CHAT_HOST_ROOMS_PER_MINUTE="0",
            CHAT_ROOM_LIMIT="25",
        )
        spy = stack.spawn(
            "py-spy",
            [
                py_spy,
                "record",
                "--pid",
                str(chat.pid),
                *([] if args.blocking else ["--nonblocking"]),
                "--rate",
                str(args.rate),
                "--duration",
                str(args.seconds),
                "--format",
                "raw",
                "--output",
                str(raw),
            ],
        )
        client = stack.python(
            "client",
            "bench.volanomark",
            "--url",
            f"ws://127.0.0.1:{port}/ws",
            "--rooms",
            str(args.rooms),
            "--messages",
            str(args.messages),
        )
        client.popen.wait(600)
        result = [line for line in client.tail().splitlines() if line.startswith("{")]
        spy.popen.send_signal(2)  # SIGINT: py-spy writes what it has and exits
        try:
            spy.popen.wait(30)
        except subprocess.TimeoutExpired:
            spy.stop()
    if result:
        score = json.loads(result[-1])["score"]
        print(f"VolanoMark while profiling: {score:,.0f} msg/s (py-spy slows it a little)")
    print(rank(raw))
    print(f"\nraw collapsed stacks: {raw.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
