"""Small helpers the benchmarks share: ports, file-descriptor limits, memory, event loops."""

from __future__ import annotations

import asyncio
import os
import platform
import resource
import socket
import time

__all__ = [
    "free_port",
    "install_uvloop",
    "load_average",
    "quick_mode",
    "raise_nofile",
    "rss_bytes",
    "wait_for_port",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port}")


def quick_mode() -> bool:
    """`BENCH_QUICK=1`: the smoke-test sizes (`make bench BENCH_QUICK=1`)."""
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


def raise_nofile() -> int:
    """Raise this process's open-file limit to its hard limit; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def install_uvloop() -> bool:
    """Use uvloop (as uvicorn does for the chat) if it is installed."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def machine() -> str:
    """The machine a benchmark ran on and its load at the end, for the line above its table."""
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}, load average "
        f"{load} at the end"
    )
