"""Removing what a failed create or an ended registration left behind (docs/design.md,
"Creating, ending, and failing halfway"): index keys without an entry, positions of
registrations that are gone, and the delete markers of ended registrations. Every registry runs
it at start and every 15 minutes (`services/registry/upkeep.py`)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from shared.bus import POSITIONS_BUCKET, SUBSCRIPTIONS_BUCKET, Bus
from shared.direct import Stored
from shared.leases import REGISTRY_BUCKET, lease, registry_bucket
from shared.subscriptions import bucket_key, get_entry, purge_key, scan_bucket

__all__ = ["sweep_orphans"]


async def sweep_orphans(bus: Bus, min_age_s: float = 300.0) -> int:
    """Delete index keys left without an entry by a create that failed halfway, positions of
    registrations that are gone (a dispatcher that had not yet seen the end wrote one), and the
    delete markers of ended registrations.

    Only those older than `min_age_s` (far longer than a create takes) and, for index keys,
    only under the registration's lease, so a create in progress is never disturbed. Returns
    how many went.
    """
    removed = 0
    bucket = await registry_bucket(bus, None)
    cutoff = time.time() - min_age_s
    if bucket is not None:
        async for found in _older(bus, REGISTRY_BUCKET, "room.>", cutoff):
            sub_id = found.data.decode()
            if found.deleted or await get_entry(bus, sub_id) is not None:
                continue
            async with lease(bucket, sub_id):
                if await get_entry(bus, sub_id) is None:
                    await bucket.delete(bucket_key(REGISTRY_BUCKET, found))
                    removed += 1
    async for found in _older(bus, POSITIONS_BUCKET, ">", cutoff):
        key = bucket_key(POSITIONS_BUCKET, found)
        sub_id = key.split(".", 1)[1]
        if sub_id.startswith("sub_") and await get_entry(bus, sub_id) is None:
            await purge_key(bus, POSITIONS_BUCKET, key)
            removed += 1
    async for found in _older(bus, SUBSCRIPTIONS_BUCKET, ">", cutoff):
        if found.deleted:  # the delete marker of an ended registration
            key = bucket_key(SUBSCRIPTIONS_BUCKET, found)
            async with lease(bucket, key):
                if await get_entry(bus, key) is None:
                    await purge_key(bus, SUBSCRIPTIONS_BUCKET, key)
    return removed


async def _older(bus: Bus, bucket: str, keys: str, cutoff: float) -> AsyncIterator[Stored]:
    """The bucket's messages on `keys` stored before `cutoff`, oldest first."""
    async for found in scan_bucket(bus, bucket, keys):
        if found.stored_at <= cutoff:
            yield found
