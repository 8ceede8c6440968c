"""Registrations (docs/registry-api.md) and where they live in JetStream.

A registration is a KV entry keyed by its id (bucket `volano_subscriptions`) and nothing else:
no NATS object per registration. Its `start_seq` is the events stream's last sequence when it
was stored, read before the entry is written and before the registry answers, so every event
stored after the answer has a greater sequence: "in force from the moment its 201 is sent" holds
by construction, whatever the dispatcher is doing. The dispatcher keeps where each registration
stands in a second bucket (`shared/positions.py`).

The id is derived from (room, url), so the same pair registered twice, by any number of registry
replicas at once, meets in one place. Creating and ending a registration are serialised per id by
a short lease in a third bucket, `volano_registry` (atomic `KV.create`, takeover of an expired
lease by a revision-checked update), so an ender never removes the index key or position of a
registration made after it looked. The entry itself is still written with an atomic `KV.create`.

`volano_registry` also holds the per-room index: a key `room.<room-token>.<id>` for every
registration, so listing one room reads only that room's keys. Its values are not
Subscriptions; the dispatcher never watches this bucket.

A registration made with a `since` starts earlier than the stream's end (`shared/replay.py`):
the dispatcher reads its room from there, so it receives the held events first.

Failure halfway: the index key is written before the entry, so a crash or a NATS outage in
between leaves an index key without an entry; listing skips those and `sweep_orphans` removes
them, and the positions of registrations that are gone (`shared/sweep.py`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from nats.js.errors import (
    APIError,
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)

from shared.bus import POSITIONS_BUCKET, SUBSCRIPTIONS_BUCKET, Bus
from shared.direct import Stored
from shared.ids import subscription_id
from shared.leases import REGISTRY_BUCKET, lease, registry_bucket
from shared.positions import Position, position_key
from shared.replay import replay_start
from shared.since import Since
from shared.subjects import EVENTS_STREAM, room_token

__all__ = [
    "Gone",
    "Page",
    "Subscription",
    "bucket_key",
    "count_subscriptions",
    "create_subscription",
    "delete_subscription",
    "get_entry",
    "get_subscription",
    "list_page",
    "list_subscriptions",
    "new_secret",
    "purge_key",
    "scan_bucket",
    "subscription_id",
]

MAX_SCAN = 1000  # stream messages one page may look at (skipping deleted ones)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    room: str
    url: str
    secret: str
    created_at: str
    start_seq: int | None = None  # the stream's last sequence when stored; None: made before

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Subscription:
        """Raises ValueError for anything that is not a registration."""
        try:
            found = json.loads(data)
            return cls(
                id=str(found["id"]),
                room=str(found["room"]),
                url=str(found["url"]),
                secret=str(found["secret"]),
                created_at=str(found["created_at"]),
                start_seq=None if found.get("start_seq") is None else int(found["start_seq"]),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"not a registration: {exc!r}") from exc


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Subscription]
    next_seq: int | None  # stream sequence to continue from; None: nothing more


@dataclass(frozen=True, slots=True)
class Gone:
    """A registration just ended, and the last event its callback answered 200 as stored in
    its position (0: none stored)."""

    subscription: Subscription
    delivered: int


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _index_key(room: str, sub_id: str) -> str:
    return f"room.{room_token(room)}.{sub_id}"


# --- the store ---------------------------------------------------------------------------------


async def get_entry(bus: Bus, sub_id: str) -> tuple[Subscription, int] | None:
    try:
        entry = await bus.subscriptions.get(sub_id)
    except (KeyNotFoundError, KeyDeletedError):
        return None
    if not entry.value or entry.revision is None:
        return None
    return Subscription.from_json(entry.value), entry.revision


async def get_subscription(bus: Bus, sub_id: str) -> Subscription | None:
    found = await get_entry(bus, sub_id)
    return None if found is None else found[0]


async def create_subscription(
    bus: Bus, room: str, url: str, replicas: int = 1, since: Since | None = None
) -> tuple[Subscription, bool]:
    """Store a registration; returns it and whether it is new (False: it existed already, and
    `since` is ignored).

    In force when this returns: its `start_seq` was read before its entry was written (with
    `since`, it is that point, held between the oldest and the last stored event). Once begun,
    it runs to its end even if the caller is cancelled (shielded).
    """
    return await asyncio.shield(_create(bus, room, url, replicas, since))


async def _create(
    bus: Bus, room: str, url: str, replicas: int, since: Since | None
) -> tuple[Subscription, bool]:
    sub_id = subscription_id(room, url)
    existing = await get_subscription(bus, sub_id)
    if existing is not None:
        return existing, False
    bucket = await registry_bucket(bus, replicas)
    async with lease(bucket, sub_id) as held:
        existing = await get_subscription(bus, sub_id)
        if existing is not None:
            return existing, False
        assert bucket is not None
        state = (await bus.js.stream_info(EVENTS_STREAM)).state
        start_seq = int(state.last_seq)
        if since is not None:
            start_seq = await replay_start(bus, room, since, int(state.first_seq), start_seq)
        subscription = Subscription(sub_id, room, url, new_secret(), _now(), start_seq)
        try:
            await bucket.put(_index_key(room, sub_id), sub_id.encode())
            await held.confirm()  # NATS was so slow that another took over: stop here
            await bus.subscriptions.create(sub_id, subscription.to_json())
        except KeyWrongLastSequenceError:  # only a writer that bypassed the lease gets here
            existing = await get_subscription(bus, sub_id)
            if existing is None:
                raise
            return existing, False
        return subscription, True


async def delete_subscription(bus: Bus, sub_id: str, revision: int | None = None) -> Gone | None:
    """End a registration: its entry, its index key and its position go. None if there was
    none (of that revision).

    With `revision`, only the entry of that revision is ended: a dispatcher ending the
    registration it read never ends a newer one of the same room and URL. Once begun, it runs
    to its end even if the caller is cancelled (shielded).
    """
    return await asyncio.shield(_delete(bus, sub_id, revision))


async def _delete(bus: Bus, sub_id: str, revision: int | None) -> Gone | None:
    if await get_entry(bus, sub_id) is None:
        return None
    bucket = await registry_bucket(bus, None)
    async with lease(bucket, sub_id) as held:
        found = await get_entry(bus, sub_id)
        if found is None or (revision is not None and found[1] != revision):
            return None
        subscription, current = found
        await held.confirm()
        try:
            await bus.subscriptions.delete(sub_id, last=current)
        except APIError as exc:  # changed since we read it: only a writer bypassing the lease
            log.warning("registration %s changed while ending it: %s", sub_id, exc)
            return None
        if bucket is not None:
            await bucket.delete(_index_key(subscription.room, sub_id))
        key = position_key(subscription.room, sub_id)
        delivered = await _delivered(bus, key, current)
        await purge_key(bus, POSITIONS_BUCKET, key)
        return Gone(subscription, delivered)


async def _delivered(bus: Bus, key: str, entry: int) -> int:
    """The stored position of entry revision `entry` (0: none)."""
    try:
        stored = await bus.positions.get(key)
    except (KeyNotFoundError, KeyDeletedError):
        return 0
    if not stored.value:
        return 0
    position = Position.from_json(stored.value)
    return position.seq if position.entry == entry else 0


async def purge_key(bus: Bus, bucket: str, key: str) -> None:
    """Remove every message of a key, markers included (a KV delete leaves one for ever)."""
    with contextlib.suppress(NotFoundError):
        await bus.js.purge_stream(f"KV_{bucket}", subject=f"$KV.{bucket}.{key}")


SCAN_BATCH = 256  # messages per direct get when scanning a bucket


async def scan_bucket(bus: Bus, bucket: str, keys: str, after: int = 0) -> AsyncIterator[Stored]:
    """The bucket's messages on `keys` after sequence `after`, oldest first, read in batches."""
    exhausted = False
    while not exhausted:
        batch, exhausted = await bus.direct.read(
            f"KV_{bucket}", f"$KV.{bucket}.{keys}", after, SCAN_BATCH
        )
        for found in batch:
            after = found.seq
            yield found


def bucket_key(bucket: str, found: Stored) -> str:
    return found.subject.removeprefix(f"$KV.{bucket}.")


async def list_page(
    bus: Bus, room: str | None = None, start_seq: int = 1, limit: int = 100
) -> Page:
    """One page of registrations (of one room, or all), oldest first, from `start_seq` on.

    The order is the bucket's stream order, which is creation order since an entry is never
    updated: a later page never repeats or skips an entry that existed throughout. A page looks
    at most at `MAX_SCAN` stream messages, so it may be short and still have a `next_seq`.
    """
    if room is None:
        bucket_name, keys = SUBSCRIPTIONS_BUCKET, ">"
    else:
        if await registry_bucket(bus, None) is None:
            return Page([], None)
        bucket_name, keys = REGISTRY_BUCKET, f"room.{room_token(room)}.*"
    items: list[Subscription] = []
    seq = max(1, start_seq)
    scanned = 0
    async for found in scan_bucket(bus, bucket_name, keys, seq - 1):
        if len(items) == limit:  # there is at least one more message
            return Page(items, found.seq)
        if scanned == MAX_SCAN:
            return Page(items, found.seq)
        scanned += 1
        seq = found.seq + 1
        if found.deleted:
            continue
        if room is None:
            items.append(Subscription.from_json(found.data))
        else:
            sub = await get_subscription(bus, found.data.decode())
            if sub is not None and sub.room == room:
                items.append(sub)
    return Page(items, None)


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
    """How many registrations there are: the messages the bucket holds, one per key. An
    ended registration's delete marker counts until `sweep_orphans` purges it (it stays long
    enough for every watcher to see the end)."""
    return int((await bus.js.stream_info(f"KV_{SUBSCRIPTIONS_BUCKET}")).state.messages)
