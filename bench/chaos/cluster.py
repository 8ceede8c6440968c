"""The chaos run's processes on 127.0.0.1: a 3-node NATS JetStream cluster and the services,
each of which can be signalled, and started again on the same ports with the same store.

Every process has a session of its own (a Ctrl-C reaches only the run, which then stops them)
and a log file in the run's directory, appended to across restarts, so what a service said
around a fault can be read afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.stack import ROOT
from bench.util import free_port
from shared.nats_binary import AUTH_CONFIG, nats_server_binary, nats_server_env

__all__ = ["Node", "Process", "nats_nodes", "service"]

PORT_VARS = {"chat": "CHAT_PORT", "registry": "REGISTRY_PORT", "dispatcher": "DISPATCHER_PORT"}


class Process:
    """One process that the run starts, signals and starts again: `argv` with `env`, healthy
    when `health_url` answers 200."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], health_url: str, log: Path
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.health_url = health_url
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def exit_code(self) -> int | None:
        return None if self.popen is None else self.popen.returncode

    def start(self) -> None:
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts} at {time.time():.3f}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        self.starts += 1

    async def wait_healthy(self, within_s: float = 120.0) -> None:
        """Until `health_url` answers 200; raises if the process exits or takes too long."""
        deadline = time.monotonic() + within_s
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if not self.alive:
                    raise RuntimeError(f"{self.name} exited; see {self.log}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(self.health_url)).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{self.name} not healthy within {within_s} s; see {self.log}")

    async def stop(self, sig: signal.Signals, within_s: float = 30.0) -> int | None:
        """Sends `sig` and waits for the process to end (SIGKILL after `within_s`); its exit
        status. (Popen signals only a process it has not reaped, never a reused pid.)"""
        popen = self.popen
        if popen is None:
            return None
        popen.send_signal(sig)
        deadline = time.monotonic() + within_s
        while popen.poll() is None:
            if time.monotonic() > deadline:
                popen.kill()
            await asyncio.sleep(0.05)
        return popen.returncode


class Node:
    """Ports and configuration of one NATS node."""

    def __init__(self, index: int, directory: Path) -> None:
        self.index = index
        self.dir = directory / f"nats-{index}"
        self.client, self.cluster, self.monitor = free_port(), free_port(), free_port()

    def config(self, nodes: list[Node]) -> str:
        """`no_advertise`: clients learn of no other node, so they reach NATS only through the
        addresses they were given (the proxies). The users are the deployment's (a copy of
        `AUTH_CONFIG` beside it; their passwords from the environment)."""
        routes = "\n".join(f"    nats://127.0.0.1:{n.cluster}" for n in nodes)
        return (
            f"server_name: nats-{self.index}\n"
            f"listen: 127.0.0.1:{self.client}\n"
            f"http: 127.0.0.1:{self.monitor}\n"
            f"jetstream {{\n  store_dir: {self.dir / 'data'}\n  max_memory_store: 64MB\n}}\n"
            f"cluster {{\n  name: chaos\n  listen: 127.0.0.1:{self.cluster}\n"
            f"  no_advertise: true\n  routes: [\n{routes}\n  ]\n}}\n"
            "include ./auth.conf\n"
        )


def nats_nodes(
    directory: Path, count: int, passwords: dict[str, str]
) -> tuple[list[Process], list[int]]:
    """`count` NATS nodes routed to each other (not started), with the users whose passwords
    `new_passwords` made, and their client ports."""
    nodes = [Node(i, directory) for i in range(count)]
    processes = []
    for node in nodes:
        node.dir.mkdir(parents=True)
        shutil.copy(AUTH_CONFIG, node.dir / "auth.conf")
        conf = node.dir / "nats.conf"
        conf.write_text(node.config(nodes))
        processes.append(
            Process(
                f"nats-{node.index}",
                [nats_server_binary(), "-c", str(conf)],
                {**nats_server_env(), **passwords},
                f"http://127.0.0.1:{node.monitor}/healthz",
                directory / f"nats-{node.index}.log",
            )
        )
    return processes, [n.client for n in nodes]


def service(name: str, kind: str, env: dict[str, str], directory: Path) -> tuple[Process, int]:
    """`python -m services.KIND` as `name`, on a port of its own; ready when `/readyz` is."""
    port = free_port()
    full = {**os.environ, **env, PORT_VARS[kind]: str(port)}
    process = Process(
        name,
        [sys.executable, "-m", f"services.{kind}"],
        full,
        f"http://127.0.0.1:{port}/readyz",
        directory / f"{name}.log",
    )
    return process, port
