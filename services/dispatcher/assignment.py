"""Which dispatcher replica serves which partition of the rooms, with no I/O.

Every replica heartbeats into a KV bucket whose entries expire (see `membership.py`); the live
replicas are the keys present. Each partition (`shared/positions.py`) belongs to exactly one of
them by rendezvous (highest-random-weight) hashing: every replica computes the same owner from
the same member list, without talking to the others, and when a replica joins or leaves only the
partitions it gains or loses move (about 1/N of them), not all of them.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
from collections.abc import Iterable

from shared.positions import PARTITIONS, partition_prefix

__all__ = ["new_replica_id", "owned", "owned_partitions", "owner"]

_KEY_UNSAFE = re.compile(r"[^-_=a-zA-Z0-9]")


def _weight(member: str, key: str) -> bytes:
    return hashlib.blake2b(f"{member}\0{key}".encode(), digest_size=8).digest()


def owner(key: str, members: Iterable[str]) -> str | None:
    """The member that serves `key` (None if there is no member)."""
    best: tuple[bytes, str] | None = None
    for member in members:
        candidate = (_weight(member, key), member)
        if best is None or candidate > best:
            best = candidate
    return None if best is None else best[1]


def owned(me: str, keys: Iterable[str], members: Iterable[str]) -> set[str]:
    """The keys that `me` serves when `members` are alive."""
    alive = sorted(set(members) | {me})
    return {k for k in keys if owner(k, alive) == me}


def owned_partitions(me: str, members: Iterable[str]) -> set[int]:
    """The partitions that `me` serves when `members` are alive."""
    keys = {partition_prefix(p): p for p in range(PARTITIONS)}
    return {keys[k] for k in owned(me, keys, members)}


def new_replica_id() -> str:
    """A KV-key-safe name for this process, unique even across restarts on one host."""
    host = _KEY_UNSAFE.sub("-", socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"
