"""The chaos run's faults, drawn from a seed before the run starts (pure: no I/O, no clock).

A fault is due `at` seconds into the run, hits one `target` (a service process such as
`chat-1`, a NATS node `nats-0`, or the proxy in front of one, `proxy-2`) and holds it for
`hold` seconds: how long a killed process stays down before it is started again, or how long a
proxy stalls. The same seed, length and targets always give the same faults, so a run that
found something can be repeated. Which faults may overlap is the injector's business
(`bench/chaos/inject.py`): one process of each kind, and one NATS node, down at a time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["HOLDS", "KINDS", "Fault", "group", "plan"]

# kind: (weight, the kind of target it hits)
KINDS: dict[str, tuple[int, str]] = {
    "sigkill": (3, "service"),
    "sigterm": (3, "service"),
    "nats-kill": (2, "nats"),
    "proxy-cut": (2, "proxy"),
    "proxy-stall": (2, "proxy"),
}

# kind: (shortest, longest) hold in seconds
HOLDS: dict[str, tuple[float, float]] = {
    "sigkill": (0.5, 5.0),
    "sigterm": (0.5, 5.0),
    "nats-kill": (1.0, 8.0),
    "proxy-cut": (0.0, 0.0),
    "proxy-stall": (1.0, 8.0),
}


@dataclass(frozen=True, slots=True)
class Fault:
    at: float
    kind: str
    target: str
    hold: float


def group(target: str) -> str:
    """What a target shares its turn with: `chat-1` -> `chat`, `nats-2` -> `nats`; a proxy is
    its own group (`proxy-0`)."""
    kind, _, _ = target.rpartition("-")
    return target if kind == "proxy" else kind


def plan(
    seed: int, seconds: float, mean_interval: float, services: list[str], nodes: int
) -> list[Fault]:
    """The faults of a run `seconds` long, about one every `mean_interval` seconds (gaps drawn
    from an exponential distribution), against the service processes `services` and NATS
    nodes (and their proxies) `0 .. nodes-1`. Sorted by `at`, every `at` in `[0, seconds)`."""
    if seconds <= 0 or mean_interval <= 0:
        raise ValueError("seconds and mean_interval must be positive")
    if not services or nodes < 1:
        raise ValueError("need at least one service and one NATS node")
    targets = {
        "service": services,
        "nats": [f"nats-{i}" for i in range(nodes)],
        "proxy": [f"proxy-{i}" for i in range(nodes)],
    }
    rng = random.Random(seed)
    kinds = list(KINDS)
    weights = [KINDS[k][0] for k in kinds]
    faults: list[Fault] = []
    at = rng.expovariate(1 / mean_interval)
    while at < seconds:
        kind = rng.choices(kinds, weights)[0]
        target = rng.choice(targets[KINDS[kind][1]])
        low, high = HOLDS[kind]
        faults.append(Fault(at, kind, target, rng.uniform(low, high)))
        at += rng.expovariate(1 / mean_interval)
    return faults
