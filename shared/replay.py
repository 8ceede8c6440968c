"""Where a registration made with `since` starts, and from when it replays (docs/design.md,
"Replay, ended registrations, attempts").

Replay is a matter of `start_seq` only: a registration starts after that sequence, and the
dispatcher's feed of a registration behind the tail reads its room from the stream (batched
direct gets) until it meets the tail, then takes the tail's offers: held events first, in
order, then the live ones, each once. So all this module does is turn a `Since` into a
sequence, with at most one direct get, and say when the first replayed event was stored.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from shared.bus import Bus
from shared.since import Since, rfc3339, start_point
from shared.subjects import EVENTS_STREAM, room_subjects

__all__ = ["first_replayed", "replay_start"]

LOOKUP_TIMEOUT_S = 5.0


async def replay_start(bus: Bus, room: str, since: Since, first_seq: int, last_seq: int) -> int:
    """The `start_seq` of a registration of `room` asked to start at `since`, when the stream
    holds `first_seq`..`last_seq`."""
    after = await _after(bus, room, since)
    return start_point(last_seq if after is None else after, first_seq, last_seq)


async def first_replayed(bus: Bus, room: str, since: Since) -> float | None:
    """When the first event a registration of `room` starting at `since` would replay was
    stored (unix time), or None if the stream holds none. Asked before the registration is
    stored, so that a NATS failure here leaves nothing changed."""
    after = await _after(bus, room, since)
    return None if after is None else await _first_event_at(bus, room, after)


async def _after(bus: Bus, room: str, since: Since) -> int | None:
    """The sequence after which `since` starts, or None if no held event of the room is after
    it (a time later than the room's last event)."""
    if since.seq is not None:
        return since.seq
    assert since.time is not None
    if since.time >= datetime.now(UTC):  # nothing stored yet (and far-off times confuse NATS)
        return None
    found = await _first_from(bus, room, since.time)
    return None if found is None else found - 1


async def _first_from(bus: Bus, room: str, moment: datetime) -> int | None:
    """The sequence of the room's first held event stored at or after `moment`, or None."""
    request = {"start_time": rfc3339(moment, digits=6), "next_by_subj": room_subjects(room)}
    answer = await bus.nc.request(
        f"$JS.API.DIRECT.GET.{EVENTS_STREAM}",
        json.dumps(request).encode(),
        timeout=LOOKUP_TIMEOUT_S,
    )
    headers = answer.headers or {}
    if "Nats-Sequence" not in headers:  # 404: nothing stored at or after it
        return None
    return int(headers["Nats-Sequence"])


async def _first_event_at(bus: Bus, room: str, after: int) -> float | None:
    """When the room's first held event after sequence `after` was stored (unix time), or
    None if the stream holds none."""
    found, _ = await bus.direct.read(EVENTS_STREAM, room_subjects(room), after, 1)
    return found[0].stored_at if found else None
