"""Registrations (SPEC §3) and where they live in JetStream.

A registration is a KV entry keyed by its id (bucket `volano_subscriptions`) *and* a durable
JetStream consumer of the same name, filtered on its room's subjects with `DeliverPolicy.NEW`.
The registry creates the consumer before it writes the entry and before it answers, so every
event accepted after the answer is already held for this registration: "in force from the moment
its 201 is sent" holds by construction, whatever the dispatcher is doing. `max_ack_pending=1`
makes JetStream itself hand out a registration's events one at a time, in stream order, to
whichever dispatcher replica asks.

The id is derived from (room, url), so the same pair registered twice, by any number of registry
replicas at once, meets in one place. Creating and ending a registration are serialised per id by
a short lease in a second bucket, `volano_registry` (atomic `KV.create`, takeover of an expired
lease by a revision-checked update), so a creator never mistakes another's consumer for an
orphan and an ender never deletes the consumer of a registration made after it looked. The
entry itself is still written with an atomic `KV.create`.

`volano_registry` also holds the per-room index: a key `room.<room-token>.<id>` for every
registration, so listing one room reads only that room's keys. Its values are not
Subscriptions; the dispatcher never watches this bucket.

Failure halfway: a consumer is created before its entry, so a crash or a NATS outage in between
leaves an orphan consumer (and maybe an index key) without an entry. The next registration of the
same pair deletes it before creating a fresh one (so no event from before the answer is ever
delivered), `sweep_orphans` removes the ones nobody re-registers, and listing skips index keys
without an entry.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import secrets
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, KeyValueConfig, StorageType
from nats.js.errors import (
    APIError,
    BucketNotFoundError,
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from shared.bus import SUBSCRIPTIONS_BUCKET, Bus, ensure_key_value
from shared.subjects import EVENTS_STREAM, room_subjects, room_token

__all__ = [
    "REGISTRY_BUCKET",
    "Page",
    "RegistryBusyError",
    "Subscription",
    "consumer_config",
    "count_subscriptions",
    "create_subscription",
    "delete_subscription",
    "get_subscription",
    "list_page",
    "list_subscriptions",
    "new_secret",
    "subscription_id",
    "sweep_orphans",
]

ACK_WAIT_S = 5.0  # short, for quick takeover after a crash; long POSTs send in_progress

REGISTRY_BUCKET = "volano_registry"
LEASE_S = 15.0  # a create or delete holds its id's lease at most this long (renewed once)
LEASE_WAIT_S = LEASE_S + 2.0  # so a waiter always outlasts a lease whose holder died
MAX_SCAN = 1000  # stream messages one page may look at (skipping deleted ones)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    room: str
    url: str
    secret: str
    created_at: str

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Subscription:
        return cls(**json.loads(data))


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Subscription]
    next_seq: int | None  # stream sequence to continue from; None: nothing more


class RegistryBusyError(Exception):
    """Another registry held this registration's lease for longer than `LEASE_WAIT_S`."""


def subscription_id(room: str, url: str) -> str:
    digest = hashlib.sha256(json.dumps([room, url]).encode()).digest()
    return "sub_" + base64.b32encode(digest[:15]).decode().lower()


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def consumer_config(
    subscription_id: str, room: str, replicas: int, ack_wait: float = ACK_WAIT_S
) -> ConsumerConfig:
    """`max_ack_pending=1` is what keeps order, whoever fetches. `ack_wait` is how long an event
    handed to a dispatcher that died waits before it is handed out again; a dispatcher that is
    still working on an event sends `in_progress` well within it."""
    return ConsumerConfig(
        durable_name=subscription_id,
        filter_subject=room_subjects(room),
        deliver_policy=DeliverPolicy.NEW,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        max_ack_pending=1,
        max_deliver=-1,
        num_replicas=replicas,
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _index_key(room: str, sub_id: str) -> str:
    return f"room.{room_token(room)}.{sub_id}"


# --- the registry bucket: leases and the per-room index ----------------------------------------

_registry_buckets: weakref.WeakKeyDictionary[Bus, KeyValue] = weakref.WeakKeyDictionary()


async def _registry_bucket(bus: Bus, replicas: int | None) -> KeyValue | None:
    """The `volano_registry` bucket; created if `replicas` is given, else None if missing."""
    found = _registry_buckets.get(bus)
    if found is not None:
        return found
    if replicas is not None:
        config = KeyValueConfig(
            bucket=REGISTRY_BUCKET, history=1, storage=StorageType.FILE, replicas=replicas
        )
        found = await ensure_key_value(bus.js, config)
    else:
        try:
            found = await bus.js.key_value(REGISTRY_BUCKET)
        except BucketNotFoundError:
            return None
    _registry_buckets[bus] = found
    return found


class _Lease:
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
async def _lease(bucket: KeyValue | None, sub_id: str) -> AsyncIterator[_Lease]:
    """Hold `sub_id`'s lease: one create or delete of that id at a time, across replicas."""
    key = f"lock.{sub_id}"
    if bucket is None:  # no registry has ever run: nothing to serialise with
        yield _Lease(None, key, 0)
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
            held = await bucket.get(key)
        except (KeyNotFoundError, KeyDeletedError):
            continue  # released meanwhile
        if held.value and json.loads(held.value)["until"] < time.time():
            with contextlib.suppress(KeyWrongLastSequenceError):
                revision = await bucket.update(key, value, last=held.revision)
            continue
        if time.monotonic() > give_up:
            raise RegistryBusyError(sub_id)
        await asyncio.sleep(0.02)
    lease = _Lease(bucket, key, revision)
    try:
        yield lease
    finally:
        with contextlib.suppress(Exception):  # taken over meanwhile: not ours to release
            await bucket.delete(key, last=lease.revision)


# --- the store ---------------------------------------------------------------------------------


async def _get_entry(bus: Bus, sub_id: str) -> tuple[Subscription, int] | None:
    try:
        entry = await bus.subscriptions.get(sub_id)
    except (KeyNotFoundError, KeyDeletedError):
        return None
    if not entry.value or entry.revision is None:
        return None
    return Subscription.from_json(entry.value), entry.revision


async def get_subscription(bus: Bus, sub_id: str) -> Subscription | None:
    found = await _get_entry(bus, sub_id)
    return None if found is None else found[0]


async def create_subscription(
    bus: Bus, room: str, url: str, replicas: int = 1
) -> tuple[Subscription, bool]:
    """Store a registration; returns it and whether it is new (False: it existed already).

    In force when this returns: its consumer exists before its entry is written. Once begun,
    it runs to its end even if the caller is cancelled (shielded).
    """
    return await asyncio.shield(_create(bus, room, url, replicas))


async def _create(bus: Bus, room: str, url: str, replicas: int) -> tuple[Subscription, bool]:
    sub_id = subscription_id(room, url)
    existing = await get_subscription(bus, sub_id)
    if existing is not None:
        return existing, False
    bucket = await _registry_bucket(bus, replicas)
    async with _lease(bucket, sub_id) as lease:
        existing = await get_subscription(bus, sub_id)
        if existing is not None:
            return existing, False
        # No entry and we hold the lease: a consumer of this name is an orphan of an attempt
        # that failed halfway. It may hold events from before this answer: start afresh.
        with contextlib.suppress(NotFoundError):
            await bus.js.delete_consumer(EVENTS_STREAM, sub_id)
        await bus.js.add_consumer(EVENTS_STREAM, consumer_config(sub_id, room, replicas))
        assert bucket is not None
        subscription = Subscription(sub_id, room, url, new_secret(), _now())
        try:
            await bucket.put(_index_key(room, sub_id), sub_id.encode())
            await lease.confirm()  # NATS was so slow that another took over: stop here
            await bus.subscriptions.create(sub_id, subscription.to_json())
        except KeyWrongLastSequenceError:  # only a writer that bypassed the lease gets here
            existing = await get_subscription(bus, sub_id)
            if existing is None:
                raise
            return existing, False
        except RegistryBusyError:
            raise  # the consumer is the new lease holder's business now
        except BaseException:
            # Undo what we can; what we cannot (NATS gone) the next attempt or the sweep heals.
            # A write whose answer was lost may have been stored: then keep its consumer.
            with contextlib.suppress(Exception):
                if await get_subscription(bus, sub_id) is None:
                    await bus.js.delete_consumer(EVENTS_STREAM, sub_id)
            raise
        return subscription, True


async def delete_subscription(bus: Bus, sub_id: str) -> bool:
    """End a registration: its consumer, its entry and its index key go. True if it existed.

    The consumer goes first: a registration is never left with an entry the dispatcher would
    serve from someone else's consumer. Once begun, it runs to its end even if the caller is
    cancelled (the dispatcher's worker that ends its own registration is cancelled by the
    supervisor as soon as the entry goes).
    """
    return await asyncio.shield(_delete(bus, sub_id))


async def _delete(bus: Bus, sub_id: str) -> bool:
    if await _get_entry(bus, sub_id) is None:
        return False
    bucket = await _registry_bucket(bus, None)
    async with _lease(bucket, sub_id) as lease:
        found = await _get_entry(bus, sub_id)
        if found is None:
            return False
        subscription, revision = found
        await lease.confirm()
        with contextlib.suppress(NotFoundError):
            await bus.js.delete_consumer(EVENTS_STREAM, sub_id)
        try:
            await bus.subscriptions.delete(sub_id, last=revision)
        except APIError as exc:  # changed since we read it: only a writer bypassing the lease
            log.warning("registration %s changed while ending it: %s", sub_id, exc)
            return False
        if bucket is not None:
            await bucket.delete(_index_key(subscription.room, sub_id))
        return True


@dataclass(frozen=True, slots=True)
class _StoredMsg:
    seq: int
    key: str
    data: bytes | None  # None for a delete marker
    stored_at: float


async def _next_message(bus: Bus, bucket: str, subject: str, seq: int) -> _StoredMsg | None:
    """The bucket's first message at or after `seq` on `subject`, or None."""
    try:
        msg = await bus.js.get_msg(f"KV_{bucket}", seq=seq, subject=subject, next=True)
    except NotFoundError:
        return None
    assert msg.seq is not None
    deleted = (msg.headers or {}).get("KV-Operation") in ("DEL", "PURGE")
    return _StoredMsg(
        msg.seq,
        (msg.subject or "").removeprefix(f"$KV.{bucket}."),
        None if deleted else (msg.data or b""),
        msg.time.timestamp() if msg.time else 0.0,
    )


async def list_page(
    bus: Bus, room: str | None = None, start_seq: int = 1, limit: int = 100
) -> Page:
    """One page of registrations (of one room, or all), oldest first, from `start_seq` on.

    The order is the bucket's stream order, which is creation order since an entry is never
    updated: a later page never repeats or skips an entry that existed throughout. A page looks
    at most at `MAX_SCAN` stream messages, so it may be short and still have a `next_seq`.
    """
    if room is None:
        bucket_name, subject = SUBSCRIPTIONS_BUCKET, f"$KV.{SUBSCRIPTIONS_BUCKET}.>"
    else:
        if await _registry_bucket(bus, None) is None:
            return Page([], None)
        bucket_name = REGISTRY_BUCKET
        subject = f"$KV.{REGISTRY_BUCKET}.room.{room_token(room)}.*"
    items: list[Subscription] = []
    seq = max(1, start_seq)
    for _ in range(MAX_SCAN):
        found = await _next_message(bus, bucket_name, subject, seq)
        if found is None:
            return Page(items, None)
        if len(items) == limit:  # there is at least one more message
            return Page(items, found.seq)
        seq = found.seq + 1
        if found.data is None:
            continue
        if room is None:
            items.append(Subscription.from_json(found.data))
        else:
            sub = await get_subscription(bus, found.data.decode())
            if sub is not None and sub.room == room:
                items.append(sub)
    return Page(items, seq)


async def list_subscriptions(bus: Bus, room: str | None = None) -> list[Subscription]:
    """Every registration (of one room), oldest first."""
    found: list[Subscription] = []
    seq: int | None = 1
    while seq is not None:
        page = await list_page(bus, room, seq)
        found.extend(page.items)
        seq = page.next_seq
    return found


async def count_subscriptions(bus: Bus) -> int:
    """How many registrations there are (reads every key, not the values)."""
    watcher = await bus.subscriptions.watchall(ignore_deletes=True, meta_only=True)
    count = 0
    try:
        async for entry in watcher:
            if entry is None:
                break
            count += 1
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]
    return count


async def sweep_orphans(bus: Bus, min_age_s: float = 300.0) -> int:
    """Delete consumers and index keys left without an entry by a create that failed halfway.

    Only those older than `min_age_s` (far longer than a create takes) and only under the
    registration's lease, so a create in progress is never disturbed. Returns how many went.
    """
    removed = 0
    bucket = await _registry_bucket(bus, None)
    cutoff = time.time() - min_age_s
    consumers: list[str] = []
    offset = 0
    while True:
        batch = await bus.js.consumers_info(EVENTS_STREAM, offset=offset)
        offset += len(batch)
        consumers.extend(
            info.name
            for info in batch
            if info.name.startswith("sub_") and info.created.timestamp() < cutoff
        )
        if len(batch) < 256:
            break
    for name in consumers:
        if await _get_entry(bus, name) is not None:
            continue
        async with _lease(bucket, name):
            if await _get_entry(bus, name) is None:
                with contextlib.suppress(NotFoundError):
                    await bus.js.delete_consumer(EVENTS_STREAM, name)
                    removed += 1
    seq = 1
    while bucket is not None:
        found = await _next_message(bus, REGISTRY_BUCKET, f"$KV.{REGISTRY_BUCKET}.room.>", seq)
        if found is None:
            break
        seq = found.seq + 1
        if found.data is None or found.stored_at > cutoff:
            continue
        sub_id = found.data.decode()
        if await _get_entry(bus, sub_id) is not None:
            continue
        async with _lease(bucket, sub_id):
            if await _get_entry(bus, sub_id) is None:
                await bucket.delete(found.key)
                removed += 1
    return removed
