"""Why a registration ended (docs/registry-api.md, "Ended registrations"), kept for a while.

When a registration ends (its callback answered a status other than 200, did not answer for
the retry window, or it was deleted), one entry goes into the KV bucket `volano_ended`, keyed
by its id. The bucket's `max_age` is `EVENTS_MAX_AGE_S`: the record lives as long as the events
it could be replayed from, then JetStream drops it. One bucket, one key per ended registration:
data, not a NATS object per registration. The dispatcher writes the entry when it ends a
registration, the registry when `DELETE` does; the registry reads it for the 404 of `GET`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

from nats.js.errors import KeyDeletedError, KeyNotFoundError

from shared.bus import Bus, LazyBucket

__all__ = ["ENDED_BUCKET", "Ended", "EndedLog", "Reason"]

ENDED_BUCKET = "volano_ended"

Reason = Literal["status", "no_answer", "deleted"]


@dataclass(frozen=True, slots=True)
class Ended:
    id: str
    room: str
    url: str
    ended_at: str  # RFC 3339, UTC
    reason: Reason
    status: int | None  # the callback's answer when `reason` is "status"
    last_webhook_id: str | None  # the last event answered 200, if any

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Ended:
        found = json.loads(data)
        reason = found["reason"]
        if reason not in ("status", "no_answer", "deleted"):
            raise ValueError(f"not a reason: {reason!r}")
        return cls(
            id=str(found["id"]),
            room=str(found["room"]),
            url=str(found["url"]),
            ended_at=str(found["ended_at"]),
            reason=reason,
            status=None if found["status"] is None else int(found["status"]),
            last_webhook_id=found["last_webhook_id"],
        )


class EndedLog:
    """The `volano_ended` bucket of one service: created on first use with `keep_s` as its
    `max_age` and `replicas` replicas."""

    def __init__(self, keep_s: float, replicas: int) -> None:
        self.replicas = replicas
        self._bucket = LazyBucket(ENDED_BUCKET, ttl=keep_s)

    async def record(self, bus: Bus, ended: Ended) -> None:
        kv = await self._bucket.open(bus.js, self.replicas)
        await kv.put(ended.id, ended.to_json())

    async def find(self, bus: Bus, sub_id: str) -> Ended | None:
        """The record of an ended registration still kept, or None."""
        kv = await self._bucket.open(bus.js, self.replicas)
        try:
            entry = await kv.get(sub_id)
        except (KeyNotFoundError, KeyDeletedError):
            return None
        return None if not entry.value else Ended.from_json(entry.value)
