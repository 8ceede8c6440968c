"""Which chat replicas are alive: heartbeats in a KV bucket whose entries expire.

Each replica puts its id into `volano_chat_replicas` every `CHAT_REPLICA_TTL_S / 4` seconds; an
entry expires `CHAT_REPLICA_TTL_S` after its last put. Every `enter` on the stream names the
replica that holds its user, so a member whose replica's key is gone belongs to a dead replica,
and the survivors make that user leave (services/chat/server.py, `sweep`).

A replica that cannot put its key for `fence_after_s` (less than the TTL, so before any survivor
can act) fences itself: its clients are cut off (they reconnect elsewhere), and it serves again
only under a new id, once NATS is back and its rooms have caught up with the stream, rather
than serve a view of rooms the others have moved on from. The keys are read from the bucket's
stream state (the subjects it holds), not with a KV watch, which would be a consumer made and
dropped at every heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time

from nats.js.kv import KeyValue

from shared.bus import Bus, LazyBucket

__all__ = ["REPLICAS_BUCKET", "Replicas", "new_replica_id"]

REPLICAS_BUCKET = "volano_chat_replicas"

log = logging.getLogger(__name__)


def new_replica_id() -> str:
    return "c" + secrets.token_hex(6)


class Replicas:
    def __init__(self, ttl_s: float, replicas: int) -> None:
        self.ttl_s = ttl_s
        self.beat_s = ttl_s / 4
        self.fence_after_s = ttl_s - self.beat_s
        self.replicas = replicas
        self.me = new_replica_id()
        self.live: frozenset[str] = frozenset()
        self.last_beat = float("-inf")  # monotonic time of the last heartbeat stored
        self._lazy_kv = LazyBucket(REPLICAS_BUCKET, ttl=ttl_s, manage=False)

    def renew(self) -> None:
        """A new id, after fencing: whatever the old one held is the survivors' to clear."""
        self.me = new_replica_id()
        self.last_beat = float("-inf")

    @property
    def fenced(self) -> bool:
        return time.monotonic() - self.last_beat > self.fence_after_s

    async def _bucket(self, bus: Bus) -> KeyValue:
        return await self._lazy_kv.open(bus.js, self.replicas)

    async def beat(self, bus: Bus) -> None:
        """Put this replica's key and read who else is alive. Raises if NATS is away."""
        started = time.monotonic()
        try:
            kv = await self._bucket(bus)
            await kv.put(self.me, b"{}")
        except Exception:
            self._lazy_kv.kv = None  # opened again next time (the bucket may have been lost)
            raise
        self.last_beat = started
        prefix = f"$KV.{REPLICAS_BUCKET}."
        info = await bus.js.stream_info(f"KV_{REPLICAS_BUCKET}", subjects_filter=prefix + ">")
        live = frozenset(s.removeprefix(prefix) for s in (info.state.subjects or {})) | {self.me}
        if live != self.live:
            log.info("chat replicas: %s", sorted(live))
        self.live = live

    async def leave(self, bus: Bus) -> None:
        """Remove this replica's key at once (a graceful stop whose users all left)."""
        with contextlib.suppress(Exception):
            subject = f"$KV.{REPLICAS_BUCKET}.{self.me}"
            await asyncio.wait_for(bus.js.purge_stream(f"KV_{REPLICAS_BUCKET}", subject=subject), 2)
