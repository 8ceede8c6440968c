"""Fixtures with real parts: a nats-server on free ports, the services as processes, and HTTP
callback receivers on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.callback_receiver import CallbackReceiver, Received
from shared.nats_binary import (
    AUTH_CONFIG,
    credentials,
    nats_server_binary,
    nats_server_env,
    new_passwords,
)

__all__ = ["CallbackReceiver", "Received"]  # the tests' callback receiver is the project's one

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


class NatsServer:
    """A real nats-server with JetStream; `stop`/`start` keep its port and its store. With
    `auth`, it has the users of deploy/k8s/base/nats/auth.conf (passwords in `passwords`) and
    no anonymous access."""

    def __init__(self, store: Path, auth: bool = False) -> None:
        self.port = free_port()
        self.store = store
        self.passwords = new_passwords() if auth else {}
        self.log_path = store.parent / f"nats-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def credentials(self, user: str) -> dict[str, str]:
        """`NATS_USER` and `NATS_PASSWORD` for `user`; nothing (anonymous) without auth."""
        return credentials(user, self.passwords) if self.passwords else {}

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        auth = ["-c", str(AUTH_CONFIG)] if self.passwords else []
        command = [nats_server_binary(), *auth, "-js", "-a", "127.0.0.1", "-p", str(self.port)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*command, "-sd", str(self.store)],
                env={**nats_server_env(), **self.passwords},
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        wait_for_port(self.port)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(15)
        self.proc = None


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "jetstream")
    server.start()
    yield server
    server.stop(signal.SIGKILL)


@dataclass
class Service:
    """One service (`python -m services.NAME`) as its own process."""

    name: str
    env: dict[str, str]
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready: bool = True) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.name}"],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=log,
        )
        self.wait_ready(ready)

    def wait_ready(self, ready: bool = True, timeout: float = 30.0) -> None:
        path = "/readyz" if ready else "/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log()}")
            try:
                if httpx.get(self.base_url + path, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""


API_TOKEN = "test-token-for-the-registry-0123456789"


@dataclass
class System:
    nats: NatsServer
    tmp: Path
    services: list[Service] = field(default_factory=list)

    def service(self, name: str, **env: str) -> Service:
        port = free_port()
        port_var = {
            "chat": "CHAT_PORT",
            "registry": "REGISTRY_PORT",
            "dispatcher": "DISPATCHER_PORT",
        }[name]
        base = {
            "NATS_URL": self.nats.url,
            port_var: str(port),
            "BIND_HOST": "127.0.0.1",
            "REGISTRY_API_TOKENS": API_TOKEN,
            "CHAT_RATE_LIMIT": "0",
            "DISPATCH_RETRY_WINDOW_S": "5",
            "DISPATCH_TIMEOUT_S": "2",
            "LOG_LEVEL": "INFO",
            **self.nats.credentials(name),
        }
        svc = Service(name, {**base, **env}, port, self.tmp / f"{name}-{port}.log")
        self.services.append(svc)
        return svc

    def start_all(self, callback_prefix: str, **env: str) -> tuple[Service, Service, Service]:
        """Registry (admitting `callback_prefix`), dispatcher and chat, each a process."""
        registry = self.service("registry", EVENT_CALLBACK_PREFIX=callback_prefix, **env)
        dispatcher = self.service("dispatcher", **env)
        chat = self.service("chat", **env)
        for svc in (registry, dispatcher, chat):
            svc.start()
        return registry, dispatcher, chat


@pytest.fixture
def system(nats_server: NatsServer, tmp_path: Path) -> Iterator[System]:
    sys_ = System(nats_server, tmp_path)
    yield sys_
    for svc in sys_.services:
        svc.stop(signal.SIGKILL)


@pytest.fixture
def receiver_factory() -> Iterator[Any]:
    made: list[CallbackReceiver] = []

    def make(status: int = 200, delay_s: float = 0.0, drop_first: int = 0) -> CallbackReceiver:
        r = CallbackReceiver(status, delay_s, drop_first)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture(scope="module")
def module_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """Like `system`, but one nats-server (and whatever services a module starts) per module."""
    tmp = tmp_path_factory.mktemp("system")
    nats = NatsServer(tmp / "jetstream")
    nats.start()
    sys_ = System(nats, tmp)
    yield sys_
    for svc in sys_.services:
        svc.stop(signal.SIGKILL)
    nats.stop(signal.SIGKILL)
