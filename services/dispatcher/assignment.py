"""Which dispatcher replica serves which registration, with no I/O.

Every replica heartbeats into a KV bucket whose entries expire (see `membership.py`); the live
replicas are the keys present. Each registration belongs to exactly one of them by rendezvous
(highest-random-weight) hashing: every replica computes the same owner from the same member list,
without talking to the others, and when a replica joins or leaves only the registrations it gains
or loses move (about 1/N of them), not all of them.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
from collections.abc import Iterable

__all__ = ["new_replica_id", "owned", "owner"]

_KEY_UNSAFE = re.compile(r"[^-_=a-zA-Z0-9]")


def _weight(member: str, subscription_id: str) -> bytes:
    return hashlib.blake2b(f"{member}\0{subscription_id}".encode(), digest_size=8).digest()


def owner(subscription_id: str, members: Iterable[str]) -> str | None:
    """The member that serves `subscription_id` (None if there is no member)."""
    best: tuple[bytes, str] | None = None
    for member in members:
        candidate = (_weight(member, subscription_id), member)
        if best is None or candidate > best:
            best = candidate
    return None if best is None else best[1]


def owned(me: str, subscription_ids: Iterable[str], members: Iterable[str]) -> set[str]:
    """The registrations that `me` serves when `members` are alive."""
    alive = sorted(set(members) | {me})
    return {s for s in subscription_ids if owner(s, alive) == me}


def new_replica_id() -> str:
    """A KV-key-safe name for this process, unique even across restarts on one host."""
    host = _KEY_UNSAFE.sub("-", socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"
