"""Where each registration stands in the events stream, and the partitions that group them.

Rooms are spread over `PARTITIONS` partitions by a hash of their name; every registration of a
room is in its room's partition, and one dispatcher replica serves a whole partition. The
bucket `volano_positions` holds, under `<partition>.<registration id>`, the stream sequence of
the last event that registration's callback answered 200 (`Position`), and under
`<partition>.mark` the partition's watermark (`Watermark`): every registration of the partition
that existed when it was written has been answered for every event of its room up to it. So a
dispatcher that takes a partition over reads one key range, and starts every registration that
was idle at the watermark without reading the stream for it.

Keys by partition let the registry remove a registration's position without reading it, and a
dispatcher load one partition's positions with one filtered read. `PARTITIONS` is part of the
stored layout: changing it needs a migration.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

__all__ = [
    "PARTITIONS",
    "Position",
    "Watermark",
    "partition_of",
    "partition_prefix",
    "position_key",
    "watermark_key",
]

PARTITIONS = 32


def partition_of(room: str) -> int:
    digest = hashlib.blake2b(room.encode("utf-8", "surrogatepass"), digest_size=4).digest()
    return int.from_bytes(digest, "big") % PARTITIONS


def partition_prefix(partition: int) -> str:
    return f"p{partition}"


def position_key(room: str, sub_id: str) -> str:
    return f"{partition_prefix(partition_of(room))}.{sub_id}"


def watermark_key(partition: int) -> str:
    return f"{partition_prefix(partition)}.mark"


@dataclass(frozen=True, slots=True)
class Position:
    """`seq`: the last event answered 200. `entry`: the revision of the registration entry it
    belongs to, so a position left by an ended registration never serves a new one of the
    same room and URL (which has the same id)."""

    seq: int
    entry: int

    def to_json(self) -> bytes:
        return json.dumps({"seq": self.seq, "entry": self.entry}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Position:
        found = json.loads(data)
        return cls(int(found["seq"]), int(found["entry"]))


@dataclass(frozen=True, slots=True)
class Watermark:
    """`seq`: every registration of the partition whose entry revision is at most `entries`
    has been answered for all of its room's events up to `seq`."""

    seq: int
    entries: int

    def to_json(self) -> bytes:
        return json.dumps({"seq": self.seq, "entries": self.entries}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Watermark:
        found = json.loads(data)
        return cls(int(found["seq"]), int(found["entries"]))
