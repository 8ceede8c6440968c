"""The benchmark's own logic: VolanoMark's counting against the in-process baseline server,
the profile ranking and the results table (no services, no NATS)."""

from __future__ import annotations

import json
from pathlib import Path

from websockets.asyncio.server import serve

from bench.baseline_server import BaselineChat
from bench.plot import markdown, medians
from bench.profile_chat import rank
from bench.volanomark import MESSAGE, run_volanomark


async def test_volanomark_counts_as_the_original_against_the_baseline() -> None:
    chat = BaselineChat()
    async with serve(chat.handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        result = await run_volanomark(f"ws://127.0.0.1:{port}/", rooms=2, users=5, messages=4)
    assert result.errors == []
    assert result.sent == 2 * 5 * 4
    # each user receives every other user's messages, never the copy of its own
    assert result.received == 2 * 5 * 4 * 4
    assert result.seconds > 0
    assert result.score == (result.sent + result.received) / result.seconds
    assert len(MESSAGE) == 60


def test_rank_reads_collapsed_stacks(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text(
        "main (a.py:1);send_text (starlette/websockets.py:172) 3\n"
        "main (a.py:1);publish (nats/js/client.py:200) 1\n"
    )
    text = rank(raw)
    assert text.startswith("4 samples")
    assert "75.0%  websocket send" in text
    assert "25.0%  JetStream publish" in text


def test_medians_and_table_skip_failed_runs(tmp_path: Path) -> None:
    runs = [
        {"mode": "baseline", "rooms": 10, "score": 100.0, "errors": []},
        {"mode": "baseline", "rooms": 10, "score": 300.0, "errors": []},
        {"mode": "nats", "rooms": 10, "score": 50.0, "errors": []},
        {"mode": "nats", "rooms": 10, "score": 9999.0, "errors": ["timed out"]},
    ]
    path = tmp_path / "runs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in runs))
    assert medians([path]) == {"baseline": {10: 200.0}, "nats": {10: 50.0}}
    assert "| 10 | 200 | 50 | 0.25 |" in markdown([path])
