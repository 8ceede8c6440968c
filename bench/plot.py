"""`docs/volanomark.png`: median VolanoMark score against rooms, one line per mode.

Run: `python -m bench.plot var/bench/volanomark-*.jsonl -o docs/volanomark.png`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

__all__ = ["medians", "plot"]

LABELS = {
    "baseline": "baseline (websockets alone)",
    "nats": "chat, events to JetStream",
    "callbacks": "chat + dispatcher, 1 callback a room",
}


def medians(paths: list[Path]) -> dict[str, dict[int, float]]:
    """mode -> rooms -> median score of the runs without errors."""
    scores: dict[str, dict[int, list[float]]] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            run = json.loads(line)
            if run.get("errors"):
                continue
            scores.setdefault(run["mode"], {}).setdefault(int(run["rooms"]), []).append(
                float(run["score"])
            )
    return {
        mode: {rooms: statistics.median(v) for rooms, v in sorted(by_rooms.items())}
        for mode, by_rooms in scores.items()
    }


def plot(paths: list[Path], out: Path, reference: float | None = 22_400.0) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = medians(paths)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for mode in ("baseline", "nats", "callbacks"):
        if mode in data:
            xs = list(data[mode])
            ys = [data[mode][x] for x in xs]
            ax.plot(xs, ys, marker="o", label=LABELS[mode])
    if reference:
        ax.axhline(reference, color="grey", linestyle="--", linewidth=1)
        ax.text(10, reference * 1.02, "original VolanoChat, 10 rooms (22,400)", color="grey")
    ax.set_xlabel("rooms (20 users x 100 messages each)")
    ax.set_ylabel("messages / second (median)")
    ax.set_title("VolanoMark over the websocket protocol, 2 cores shared")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="plot VolanoMark results")
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("-o", "--out", type=Path, default=Path("docs/volanomark.png"))
    args = parser.parse_args(argv)
    plot(args.results, args.out)
    for mode, by_rooms in medians(args.results).items():
        print(mode, {r: round(s) for r, s in by_rooms.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
