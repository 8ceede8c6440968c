"""What NATS holds after a chaos run: every event of the stream, in order, and each
registration's start (read straight from the nodes, not through the proxies)."""

from __future__ import annotations

from bench.chaos.check import Registration, StreamEvent
from shared.bus import Bus, connect
from shared.events import ChatEvent, compact_json, event_to_dict, from_json
from shared.settings import CommonSettings
from shared.subjects import EVENT_SUBJECTS, EVENTS_STREAM
from shared.subscriptions import get_subscription

__all__ = ["open_bus", "read_registrations", "read_stream"]

BATCH = 256


async def open_bus(urls: list[str], replicas: int, user: dict[str, str]) -> Bus:
    """A connection as an operator's (`user`: `NATS_USER` and `NATS_PASSWORD` of the admin),
    making sure of the stream and buckets as the services declare them."""
    settings = CommonSettings(
        nats_url=",".join(urls),
        nats_replicas=replicas,
        nats_user=user["NATS_USER"],
        nats_password=user["NATS_PASSWORD"],
    )
    return await connect(settings, "chaos")


async def read_stream(bus: Bus) -> list[StreamEvent]:
    """Every event in the stream, by direct gets from its start."""
    events: list[StreamEvent] = []
    after = 0
    while True:
        batch, done = await bus.direct.read(EVENTS_STREAM, EVENT_SUBJECTS, after, BATCH)
        for stored in batch:
            event = from_json(stored.data)
            message = event.message if isinstance(event, ChatEvent) else None
            data = compact_json(event_to_dict(event))
            events.append(StreamEvent(stored.seq, event.room, data, message, stored.stored_at))
            after = stored.seq
        if done or not batch:
            return events


async def read_registrations(bus: Bus, rooms: dict[str, str]) -> list[Registration]:
    """The registrations `rooms` (id: room) as they stand: gone ones with no start."""
    found = []
    for sub_id, room in sorted(rooms.items()):
        sub = await get_subscription(bus, sub_id)
        found.append(Registration(sub_id, room, None if sub is None else (sub.start_seq or 0)))
    return found
