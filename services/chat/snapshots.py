"""Rooms as they stood at a sequence, in the KV bucket `volano_chat_rooms`, so that a replica
that starts knows every room without reading the whole stream.

A replica that changed a room's membership saves the room as its fold has it right after that
event (one key per room, the room's subject token). A snapshot only has to be true at its own
sequence: a starting replica restores each one and applies the room's events after it
(services/chat/roomlog.py), so an older snapshot saved last costs a longer read, never a wrong
room. Rooms that emptied are saved too (no members), so a key never goes back to an older room
by a delete racing a save; keys of rooms not saved for `KEEP_S` expire, and a replica saves again
the rooms its users are in, and the permanent rooms with a history, every `RESAVE_S`. A snapshot
holds the room's `history` too, so a replica that starts has every room's last chats from the
snapshot and the events after it, with no read of its own (docs/design.md, "History").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from nats.js.kv import KeyValue

from services.chat.rooms import Member, Room, Said
from shared.bus import Bus, LazyBucket
from shared.subjects import room_token

__all__ = ["KEEP_S", "RESAVE_S", "ROOMS_BUCKET", "Snapshot", "Snapshots", "decode", "encode"]

ROOMS_BUCKET = "volano_chat_rooms"
KEEP_S = 86400.0
RESAVE_S = 3600.0
READ_BATCH = 256

log = logging.getLogger(__name__)

Snapshot = tuple[str, int, list[Member], list[Said]]  # room name, sequence, members, history


def encode(room: Room) -> bytes:
    members = [
        {
            "user": m.user,
            "profile": m.profile,
            "type": m.type,
            "host": m.host,
            "replica": m.replica,
            "role": m.role,
        }
        for m in room.members.values()
    ]
    history = [[s.user, s.message, s.at, s.seq] for s in room.history]
    value = {"room": room.name, "seq": room.seq, "members": members, "history": history}
    return json.dumps(value).encode()


def decode(data: bytes) -> Snapshot:
    """Raises ValueError (KeyError, TypeError) for a value that is not a snapshot. One saved
    before rooms had a history has none."""
    value: dict[str, Any] = json.loads(data)
    members = [
        Member(m["user"], m["profile"], m["type"], m["host"], m["replica"], m["role"])
        for m in value["members"]
    ]
    history = [
        Said(str(user), str(message), float(at), int(seq))
        for user, message, at, seq in value.get("history", [])
    ]
    return str(value["room"]), int(value["seq"]), members, history


class Snapshots:
    def __init__(self, replicas: int) -> None:
        self.replicas = replicas
        self._lazy_kv = LazyBucket(ROOMS_BUCKET, ttl=KEEP_S, manage=False)

    async def _bucket(self, bus: Bus) -> KeyValue:
        return await self._lazy_kv.open(bus.js, self.replicas)

    async def save(self, bus: Bus, rooms: Iterable[Room]) -> None:
        kv = await self._bucket(bus)
        for room in rooms:
            await kv.put(room_token(room.name), encode(room))

    async def load(self, bus: Bus) -> list[Snapshot]:
        """Every room saved; a value that does not parse is logged and passed over."""
        await self._bucket(bus)
        found: list[Snapshot] = []
        after = 0
        while True:
            batch, exhausted = await bus.direct.read(
                f"KV_{ROOMS_BUCKET}", f"$KV.{ROOMS_BUCKET}.>", after, READ_BATCH
            )
            for stored in batch:
                after = stored.seq
                if stored.deleted:
                    continue
                try:
                    found.append(decode(stored.data))
                except (ValueError, KeyError, TypeError) as exc:
                    log.error(
                        "passing over an unreadable room snapshot %s: %r", stored.subject, exc
                    )
            if exhausted or not batch:
                return found
