"""Which dispatcher replicas are alive: heartbeats in a KV bucket whose entries expire.

Each replica puts its own key every `DISPATCH_HEARTBEAT_S` into `volano_dispatchers`, a bucket
whose entries live `DISPATCH_MEMBER_TTL_S` (JetStream's `max_age`, counted by the server, so
replicas' clocks do not matter), and then lists the keys: those are the live replicas. A replica
that stops gracefully purges its key, so the others take over its work at their next heartbeat;
one that dies stops renewing, and its key expires after the TTL.

The keys are read from the bucket's stream state (the subjects it holds), not with a KV watch:
a watch is a consumer made and dropped at every heartbeat. A purged or expired key leaves no
message behind, so every subject held is a live replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable

from nats.js.api import StorageType
from nats.js.kv import KeyValue

from shared.bus import Bus, LazyBucket

__all__ = ["MEMBERS_BUCKET", "Membership"]

MEMBERS_BUCKET = "volano_dispatchers"

log = logging.getLogger(__name__)


class Membership:
    def __init__(
        self,
        bus: Bus,
        me: str,
        heartbeat_s: float,
        ttl_s: float,
        replicas: int,
        on_change: Callable[[list[str]], None],
    ) -> None:
        self.bus = bus
        self.me = me
        self.heartbeat_s = heartbeat_s
        self.ttl_s = ttl_s
        self.replicas = replicas
        self.on_change = on_change
        self.members: list[str] = [me]
        self._lazy_kv = LazyBucket(MEMBERS_BUCKET, storage=StorageType.MEMORY, ttl=ttl_s)

    async def _bucket(self) -> KeyValue:
        return await self._lazy_kv.open(self.bus.js, self.replicas)

    async def run(self) -> None:
        """Heartbeat and follow the others until cancelled; then leave at once."""
        try:
            while True:
                started = time.monotonic()
                try:
                    await self.beat()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # NATS away: keep the last view until it is back
                    log.info("heartbeat failed: %r", exc)
                await asyncio.sleep(max(0.0, self.heartbeat_s - (time.monotonic() - started)))
        finally:
            await self.leave()

    async def beat(self) -> None:
        kv = await self._bucket()
        await kv.put(self.me, json.dumps({"at": time.time()}).encode())
        prefix = f"$KV.{MEMBERS_BUCKET}."
        info = await self.bus.js.stream_info(f"KV_{MEMBERS_BUCKET}", subjects_filter=prefix + ">")
        keys = [subject.removeprefix(prefix) for subject in (info.state.subjects or {})]
        members = sorted(set(keys) | {self.me})
        if members != self.members:
            log.info("dispatcher replicas: %s", members)
            self.members = members
            self.on_change(members)

    async def leave(self) -> None:
        if self._lazy_kv.kv is not None:
            with contextlib.suppress(Exception):
                subject = f"$KV.{MEMBERS_BUCKET}.{self.me}"
                purge = self.bus.js.purge_stream(f"KV_{MEMBERS_BUCKET}", subject=subject)
                await asyncio.wait_for(purge, 2)
