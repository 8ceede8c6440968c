"""Registrations (SPEC §3) and where they live in JetStream.

A registration is a KV entry keyed by its id *and* a durable JetStream consumer of the same name,
filtered on its room's subjects with `DeliverPolicy.NEW`. The registry creates the consumer before
it writes the entry and before it answers, so every event accepted after the answer is already
held for this registration: "in force from the moment its 201 is sent" holds by construction,
whatever the dispatcher is doing. `max_ack_pending=1` makes JetStream itself hand out a
registration's events one at a time, in stream order, to whichever dispatcher replica asks.

The id is derived from (room, url), so the same pair registered twice, by any number of registry
replicas at once, meets in one atomic `KV.create`: one wins with 201, the rest answer 200.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import (
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NoKeysError,
    NotFoundError,
)

from shared.bus import Bus
from shared.subjects import EVENTS_STREAM, room_subjects

__all__ = [
    "Subscription",
    "consumer_config",
    "create_subscription",
    "delete_subscription",
    "get_subscription",
    "list_subscriptions",
    "new_secret",
    "subscription_id",
]

ACK_WAIT_S = 5.0  # short, for quick takeover after a crash; long POSTs send in_progress


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


async def create_subscription(
    bus: Bus, room: str, url: str, replicas: int = 1
) -> tuple[Subscription, bool]:
    """Store a registration; returns it and whether it is new (False: it existed already)."""
    sub_id = subscription_id(room, url)
    existing = await get_subscription(bus, sub_id)
    if existing is not None:
        return existing, False
    await bus.js.add_consumer(EVENTS_STREAM, consumer_config(sub_id, room, replicas))
    subscription = Subscription(sub_id, room, url, new_secret(), _now())
    try:
        await bus.subscriptions.create(sub_id, subscription.to_json())
    except KeyWrongLastSequenceError:
        existing = await get_subscription(bus, sub_id)
        if existing is None:
            raise
        return existing, False
    return subscription, True


async def get_subscription(bus: Bus, sub_id: str) -> Subscription | None:
    try:
        entry = await bus.subscriptions.get(sub_id)
    except (KeyNotFoundError, KeyDeletedError):
        return None
    if entry.value is None:
        return None
    return Subscription.from_json(entry.value)


async def list_subscriptions(bus: Bus) -> list[Subscription]:
    try:
        keys = await bus.subscriptions.keys()
    except NoKeysError:
        return []
    found = [await get_subscription(bus, key) for key in sorted(keys)]
    return [s for s in found if s is not None]


async def delete_subscription(bus: Bus, sub_id: str) -> bool:
    """End a registration: its entry and its consumer go. True if it existed."""
    existed = await get_subscription(bus, sub_id) is not None
    if existed:
        await bus.subscriptions.delete(sub_id)
    with contextlib.suppress(NotFoundError):
        await bus.js.delete_consumer(EVENTS_STREAM, sub_id)
    return existed
