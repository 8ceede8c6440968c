"""Reading and writing the positions bucket (layout in `shared/positions.py`).

A position is only ever moved with a revision check: a replica that finds its key changed by
someone else is not the only one serving that registration (a hand-over in progress), and
must re-read where it stands rather than move it back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError

from shared.bus import POSITIONS_BUCKET, Bus
from shared.direct import DirectReader
from shared.positions import Position, Watermark, partition_prefix, watermark_key
from shared.subscriptions import Subscription

__all__ = [
    "PartitionPositions",
    "PositionConflict",
    "load_partition",
    "read_position",
    "write_position",
    "write_watermark",
]

log = logging.getLogger(__name__)

LOAD_BATCH = 1000  # positions per direct get when a partition is taken over


class PositionConflict(Exception):
    """The key changed since this replica last read or wrote it."""


@dataclass(slots=True)
class PartitionPositions:
    positions: dict[str, tuple[Position, int]] = field(default_factory=dict)  # id: (at, rev)
    watermark: Watermark | None = None

    def start_of(self, sub: Subscription, revision: int) -> tuple[int, int]:
        """Where a registration (entry `revision`) starts when its partition is taken over:
        the highest of its `start_seq`, its position and the watermark that covers it; and
        the revision of its stored position (0: none)."""
        at = sub.start_seq or 0
        position_revision = 0
        stored = self.positions.get(sub.id)
        if stored is not None:
            position, position_revision = stored
            if position.entry == revision:
                at = max(at, position.seq)
        if self.watermark is not None and revision <= self.watermark.entries:
            at = max(at, self.watermark.seq)
        return at, position_revision


async def load_partition(reader: DirectReader, partition: int) -> PartitionPositions:
    """Every position and the watermark of one partition, read in batches by direct gets (the
    bucket keeps one message per key, so what it holds is exactly the current entries)."""
    found = PartitionPositions()
    prefix = f"$KV.{POSITIONS_BUCKET}.{partition_prefix(partition)}."
    stream = f"KV_{POSITIONS_BUCKET}"
    after, exhausted = 0, False
    while not exhausted:
        batch, exhausted = await reader.read(stream, prefix + "*", after, LOAD_BATCH)
        for message in batch:
            after = message.seq
            name = message.subject.removeprefix(prefix)
            try:
                if name == "mark":
                    found.watermark = Watermark.from_json(message.data)
                elif message.data:
                    found.positions[name] = (Position.from_json(message.data), message.seq)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring unreadable position %s: %r", message.subject, exc)
    return found


async def write_position(bus: Bus, key: str, position: Position, revision: int) -> int:
    """Store `position` over the revision last seen (0: none); the new revision. Raises
    PositionConflict if the key moved meanwhile."""
    try:
        if revision == 0:
            return int(await bus.positions.create(key, position.to_json()))
        return int(await bus.positions.update(key, position.to_json(), last=revision))
    except KeyWrongLastSequenceError as exc:
        raise PositionConflict(key) from exc


async def read_position(bus: Bus, key: str) -> tuple[Position, int] | None:
    try:
        entry = await bus.positions.get(key)
    except (KeyNotFoundError, KeyDeletedError):
        return None
    if not entry.value or entry.revision is None:
        return None
    return Position.from_json(entry.value), entry.revision


async def write_watermark(bus: Bus, partition: int, mark: Watermark) -> None:
    await bus.positions.put(watermark_key(partition), mark.to_json())
