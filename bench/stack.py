"""Processes a benchmark run needs, each in its own process group on 127.0.0.1, all stopped on
exit: nats-server, the chat (with or without registry, dispatcher and a callback receiver), or
the baseline server.

`Stack` is a context manager; leaving it (normally or by an exception) kills every process
group it started.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from bench.util import free_port, wait_for_port
from shared.nats_binary import nats_server_binary, nats_server_env

__all__ = ["ROOT", "Proc", "Stack", "cpu_seconds", "shown"]

ROOT = Path(__file__).resolve().parent.parent

_TICKS = os.sysconf("SC_CLK_TCK")


def shown(path: Path) -> Path:
    """`path` relative to the checkout when it lies inside it (an `--out` may point elsewhere)."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (its threads included), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL it if it lingers."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


class Stack:
    """Starts processes; `close()` (or leaving the `with`) stops them all, newest first."""

    def __init__(self, keep_logs: Path | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="volano-bench-")
        self.dir = Path(self._tmp.name)
        self.logs = keep_logs or self.dir
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs: list[Proc] = []
        self.nats_url = ""
        self.token = "bench-" + secrets.token_urlsafe(32)

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()
        self._tmp.cleanup()

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                argv,
                cwd=ROOT,
                env={**os.environ, **(env or {})},
                stdout=out,
                stderr=out,
                start_new_session=True,  # its own process group, killed as one
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def nats(self) -> Proc:
        port = free_port()
        proc = self.spawn(
            "nats",
            [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(self.dir)],
            nats_server_env(),
        )
        wait_for_port(port)
        self.nats_url = f"nats://127.0.0.1:{port}"
        return proc

    def service(self, name: str, **env: str) -> tuple[Proc, int]:
        """`python -m services.NAME` on a free port, waited for until `/readyz` answers 200."""
        port = free_port()
        port_var = {
            "chat": "CHAT_PORT",
            "registry": "REGISTRY_PORT",
            "dispatcher": "DISPATCHER_PORT",
        }
        base = {
            "NATS_URL": self.nats_url,
            port_var[name]: str(port),
            "BIND_HOST": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "REGISTRY_API_TOKENS": self.token,
        }
        proc = self.spawn(name, [sys.executable, "-m", f"services.{name}"], {**base, **env})
        self.wait_http(proc, f"http://127.0.0.1:{port}/readyz")
        return proc, port

    def python(self, name: str, module: str, *args: str) -> Proc:
        return self.spawn(name, [sys.executable, "-m", module, *args])

    @staticmethod
    def wait_http(proc: Proc, url: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"{proc.name} not ready at {url}:\n{proc.tail()}")
