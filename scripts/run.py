"""`make run`: nats-server with JetStream and the three services, until Ctrl-C (docs/operations.md).

Every setting comes from the environment; what is unset gets a development default here
(a generated registry token; callbacks admitted on port 9000 of 127.0.0.1 and localhost,
where the README demo's receiver listens). nats-server runs with the users of
deploy/k8s/base/nats/auth.conf, each with a password generated here (or taken from
`NATS_<USER>_PASSWORD`), and each service connects as its own user.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from shared.nats_binary import (
    AUTH_CONFIG,
    credentials,
    nats_server_binary,
    nats_server_env,
    new_passwords,
)

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"


def wait_for_port(port: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    env = dict(os.environ)
    env.setdefault("NATS_PORT", "4222")
    env.setdefault("NATS_URL", f"nats://127.0.0.1:{env['NATS_PORT']}")
    env.setdefault("CHAT_PORT", "8000")
    env.setdefault("REGISTRY_PORT", "8080")
    env.setdefault("DISPATCHER_PORT", "8090")
    env.setdefault("REGISTRY_API_TOKENS", "dev-" + secrets.token_urlsafe(32))
    env.setdefault("EVENT_CALLBACK_PREFIX", "http://127.0.0.1:9000/ http://localhost:9000/")
    passwords = {name: env.get(name, value) for name, value in new_passwords().items()}
    VAR.mkdir(exist_ok=True)
    nats_cmd = [
        nats_server_binary(),
        "-c",
        str(AUTH_CONFIG),
        "-js",
        "-p",
        env["NATS_PORT"],
        "-sd",
        str(VAR / "jetstream"),
    ]
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        procs.append(("nats", subprocess.Popen(nats_cmd, env={**nats_server_env(), **passwords})))
        if not wait_for_port(int(env["NATS_PORT"])):
            print("nats-server did not start", file=sys.stderr)
            return 1
        for name in ("registry", "dispatcher", "chat"):
            procs.append(
                (
                    name,
                    subprocess.Popen(
                        [sys.executable, "-m", f"services.{name}"],
                        cwd=ROOT,
                        env={**env, **credentials(name, passwords)},
                    ),
                )
            )
        for name, port in (
            ("registry", env["REGISTRY_PORT"]),
            ("dispatcher", env["DISPATCHER_PORT"]),
            ("chat", env["CHAT_PORT"]),
        ):
            if not wait_for_port(int(port)):
                print(f"{name} did not start on port {port}", file=sys.stderr)
                return 1
        print(
            "\n"
            f"  chat (web client)  http://127.0.0.1:{env['CHAT_PORT']}/\n"
            f"  chat websocket     ws://127.0.0.1:{env['CHAT_PORT']}/ws\n"
            f"  registry API       http://127.0.0.1:{env['REGISTRY_PORT']}/docs\n"
            f"  dispatcher metrics http://127.0.0.1:{env['DISPATCHER_PORT']}/metrics\n"
            f"  NATS               {env['NATS_URL']} (user admin, password "
            f"{passwords['NATS_ADMIN_PASSWORD']})\n"
            f"  registry token     {env['REGISTRY_API_TOKENS'].split(',')[0]}\n"
            f"  callback prefixes  {env['EVENT_CALLBACK_PREFIX']}\n"
            "\n  Open the web client in a browser. Ctrl-C stops everything.\n",
            flush=True,
        )
        while all(p.poll() is None for _, p in procs):
            time.sleep(0.5)
        for name, p in procs:
            if p.poll() is not None:
                print(f"{name} exited with {p.returncode}; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for _, p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for _, p in reversed(procs):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    sys.exit(main())
