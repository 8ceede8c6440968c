"""`docs/volanomark.png`: median VolanoMark score against rooms, one line per mode.

Run: `python -m bench.plot var/bench/volanomark-*.jsonl -o docs/volanomark.png`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
from pathlib import Path

__all__ = ["markdown", "medians", "plot"]

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


def markdown(paths: list[Path]) -> str:
    """The medians as a Markdown table, with nats / baseline."""
    data = medians(paths)
    modes = [m for m in ("baseline", "nats", "callbacks") if m in data]
    rooms = sorted({r for m in modes for r in data[m]})
    head = "| rooms | " + " | ".join(modes) + " | nats ÷ baseline |"
    rows = [head, "|" + " --- |" * (len(modes) + 2)]
    for r in rooms:
        cells = [f"{data[m][r]:,.0f}" if r in data[m] else "" for m in modes]
        base, nats = data.get("baseline", {}).get(r), data.get("nats", {}).get(r)
        ratio = f"{nats / base:.2f}" if base and nats else ""
        rows.append(f"| {r} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(rows)


# The original VolanoChat on this machine class (shared/reference/README.md): rooms -> msg/s.
ORIGINAL = {10: 22_400.0, 50: 24_000.0}


def plot(paths: list[Path], out: Path) -> None:
    # Imported here, by name: matplotlib is in the `bench` extra only, and `make typecheck`
    # runs where just the `test` extra is installed.
    matplotlib = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    plt = importlib.import_module("matplotlib.pyplot")

    data = medians(paths)
    fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
    for mode in ("baseline", "nats", "callbacks"):
        if mode in data:
            xs = list(data[mode])
            ys = [data[mode][x] for x in xs]
            ax.plot(xs, ys, marker="o", label=LABELS[mode])
    ax.plot(
        list(ORIGINAL),
        list(ORIGINAL.values()),
        color="grey",
        linestyle="--",
        marker="s",
        label="original VolanoChat (reference figures, measured on another day)",
    )
    rooms = sorted({r for by_rooms in data.values() for r in by_rooms} | set(ORIGINAL))
    ax.set_xticks(rooms)
    ax.set_xlabel("rooms (20 users x 100 messages each)")
    ax.set_ylabel("messages / second (median)")
    ax.set_title("VolanoMark over the websocket protocol, 2 cores shared")
    highest = max(
        [*ORIGINAL.values(), *(v for by_rooms in data.values() for v in by_rooms.values())]
    )
    ax.set_ylim(0, highest * 1.15)  # every point on the chart, not only the reference ones
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize="small")
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
    print(markdown(args.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
