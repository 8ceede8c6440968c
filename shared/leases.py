"""Leases on registration ids, in the bucket `volano_registry` (which also holds the per-room
index of registrations, `shared/subscriptions.py`).

Creating and ending a registration are serialised per id by a short lease: an atomic
`KV.create` of `lock.<id>`, and takeover of an expired lease by a revision-checked update.
Different ids never wait for each other; a holder that died delays its id by at most `LEASE_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import weakref
from collections.abc import AsyncIterator

from nats.js.errors import (
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
)
from nats.js.kv import KeyValue

from shared.bus import Bus, LazyBucket

__all__ = [
    "LEASE_S",
    "LEASE_WAIT_S",
    "REGISTRY_BUCKET",
    "Lease",
    "RegistryBusyError",
    "lease",
    "registry_bucket",
]

REGISTRY_BUCKET = "volano_registry"
LEASE_S = 15.0  # a create or delete holds its id's lease at most this long (renewed once)
LEASE_WAIT_S = LEASE_S + 2.0  # so a waiter always outlasts a lease whose holder died


class RegistryBusyError(Exception):
    """Another registry held this registration's lease for longer than `LEASE_WAIT_S`."""


_buckets: weakref.WeakKeyDictionary[Bus, LazyBucket] = weakref.WeakKeyDictionary()


async def registry_bucket(bus: Bus, replicas: int | None) -> KeyValue | None:
    """The `volano_registry` bucket; created if `replicas` is given, else None if missing."""
    bucket = _buckets.setdefault(bus, LazyBucket(REGISTRY_BUCKET))
    if replicas is not None:
        return await bucket.open(bus.js, replicas)
    return await bucket.find(bus.js)


class Lease:
    """A held lease on one id; `confirm` renews it, or raises if another took it over."""

    def __init__(self, bucket: KeyValue | None, key: str, revision: int) -> None:
        self.bucket = bucket
        self.key = key
        self.revision = revision

    async def confirm(self) -> None:
        """Call before a write that must not race: after it, the lease is ours for `LEASE_S`."""
        if self.bucket is None:
            return
        value = json.dumps({"until": time.time() + LEASE_S}).encode()
        try:
            self.revision = await self.bucket.update(self.key, value, last=self.revision)
        except KeyWrongLastSequenceError:
            raise RegistryBusyError(
                f"lease on {self.key} lost: this took over {LEASE_S} s"
            ) from None


@contextlib.asynccontextmanager
async def lease(bucket: KeyValue | None, sub_id: str) -> AsyncIterator[Lease]:
    """Hold `sub_id`'s lease: one create or delete of that id at a time, across replicas."""
    key = f"lock.{sub_id}"
    if bucket is None:  # no registry has ever run: nothing to serialise with
        yield Lease(None, key, 0)
        return
    give_up = time.monotonic() + LEASE_WAIT_S
    revision: int | None = None
    while revision is None:
        value = json.dumps({"until": time.time() + LEASE_S}).encode()
        try:
            revision = await bucket.create(key, value)
            break
        except KeyWrongLastSequenceError:
            pass
        try:
            current = await bucket.get(key)
        except (KeyNotFoundError, KeyDeletedError):
            continue  # released meanwhile
        if current.value and json.loads(current.value)["until"] < time.time():
            with contextlib.suppress(KeyWrongLastSequenceError):
                revision = await bucket.update(key, value, last=current.revision)
            continue
        if time.monotonic() > give_up:
            raise RegistryBusyError(sub_id)
        await asyncio.sleep(0.02)
    held = Lease(bucket, key, revision)
    try:
        yield held
    finally:
        with contextlib.suppress(Exception):  # taken over meanwhile: not ours to release
            await bucket.delete(key, last=held.revision)
