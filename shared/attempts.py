"""Delivery attempts (docs/registry-api.md, "Delivery attempts"): where they are kept and how
the newest are read.

One stream, `VOLANO_ATTEMPTS`, holds them all: subject `volano.attempts.<subscription id>`,
one message per attempt, at most `KEPT` (100) per subject (`max_msgs_per_subject`: JetStream
drops a registration's oldest when a new one comes) and none older than `EVENTS_MAX_AGE_S`. So
it grows with data, never with NATS objects, and needs no clean-up of its own.

Reading a registration's newest first: one batched direct get with `next_by_subj` on its
literal subject returns all it holds (at most 100, oldest first) in one request; JetStream finds
a literal subject's first message from its per-subject index, without scanning the stream. The
page is then cut from that list in memory, newest first, the cursor being a stream sequence
(older attempts have lower ones). Walking back with `last_by_subj` and one get per message
would be up to 100 round trips a page for the same data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from shared.bus import Bus

__all__ = [
    "ATTEMPTS_STREAM",
    "KEPT",
    "Attempt",
    "attempts_subject",
    "ensure_attempts_stream",
    "newest_attempts",
]

ATTEMPTS_STREAM = "VOLANO_ATTEMPTS"
KEPT = 100  # attempts kept per registration


def attempts_subject(sub_id: str) -> str:
    return f"volano.attempts.{sub_id}"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST to a callback. Stored as a compact JSON array (the dispatcher writes one per
    POST, so it is kept cheap to make); the registry turns it into the API's item."""

    at: float  # unix time the POST started
    webhook_id: str
    status: int | None  # the callback's answer; None: none came
    error: str | None  # why there was no answer; None when there was one
    duration_ms: float

    def to_json(self) -> bytes:
        fields = [self.at, self.webhook_id, self.status, self.error, self.duration_ms]
        return json.dumps(fields, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Attempt:
        at, webhook_id, status, error, duration_ms = json.loads(data)
        return cls(
            at=float(at),
            webhook_id=str(webhook_id),
            status=None if status is None else int(status),
            error=None if error is None else str(error),
            duration_ms=float(duration_ms),
        )


def attempts_stream_config(max_age_s: float, replicas: int) -> StreamConfig:
    return StreamConfig(
        name=ATTEMPTS_STREAM,
        subjects=[attempts_subject("*")],
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        storage=StorageType.FILE,
        num_replicas=replicas,
        max_age=max_age_s,
        max_msgs_per_subject=KEPT,
        allow_direct=True,
    )


async def ensure_attempts_stream(js: JetStreamContext, max_age_s: float, replicas: int) -> None:
    """Create the stream, or bring an existing one to these limits."""
    config = attempts_stream_config(max_age_s, replicas)
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


async def newest_attempts(bus: Bus, sub_id: str) -> list[tuple[int, Attempt]]:
    """Every attempt kept for `sub_id`, newest first, each with its stream sequence."""
    found, _ = await bus.direct.read(ATTEMPTS_STREAM, attempts_subject(sub_id), 0, KEPT)
    return [(message.seq, Attempt.from_json(message.data)) for message in reversed(found)]
