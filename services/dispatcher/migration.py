"""From one durable consumer per registration (the design before positions) to positions.

Each old consumer's acknowledgement floor is where its registration stands: it becomes the
registration's position (created only if there is none, so running this again, or on two
replicas at once, changes nothing), and then the consumer goes. A registration of that design
whose consumer was already gone starts at the stream's end. The first service to start with
this version has already switched the stream from interest to age and size retention, so no
event any old consumer still held is lost in between.
"""

from __future__ import annotations

import contextlib
import logging

from nats.js.api import ConsumerInfo
from nats.js.errors import KeyWrongLastSequenceError, NotFoundError

from shared.bus import Bus
from shared.positions import Position, position_key
from shared.subjects import EVENTS_STREAM
from shared.subscriptions import Subscription

__all__ = ["migrate"]

log = logging.getLogger(__name__)

PAGE = 256  # consumers per page of JetStream's consumer list


async def migrate(bus: Bus, registrations: dict[str, tuple[Subscription, int]]) -> int:
    """Positions for the registrations of the old design; returns how many consumers went."""
    consumers: list[ConsumerInfo] = []
    offset = 0
    while True:
        batch = await bus.js.consumers_info(EVENTS_STREAM, offset=offset)
        consumers.extend(info for info in batch if info.name.startswith("sub_"))
        offset += len(batch)
        if len(batch) < PAGE:
            break
    for info in consumers:
        found = registrations.get(info.name)
        if found is not None:
            floor = int(info.ack_floor.stream_seq if info.ack_floor else 0)
            await _create_position(bus, found, floor)
        with contextlib.suppress(NotFoundError):
            await bus.js.delete_consumer(EVENTS_STREAM, info.name)
    legacy = [found for found in registrations.values() if found[0].start_seq is None]
    if legacy:
        last = int((await bus.js.stream_info(EVENTS_STREAM)).state.last_seq)
        for found in legacy:
            await _create_position(bus, found, last)
    if consumers:
        log.info("migrated %s registrations from their consumers", len(consumers))
    return len(consumers)


async def _create_position(bus: Bus, found: tuple[Subscription, int], seq: int) -> None:
    sub, revision = found
    with contextlib.suppress(KeyWrongLastSequenceError):  # it has one already
        await bus.positions.create(
            position_key(sub.room, sub.id), Position(seq, revision).to_json()
        )
