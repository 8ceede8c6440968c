"""How far the dispatcher is behind when the chat client has finished: read from the callback
receiver's count and JetStream, not from the dispatcher's word."""

from __future__ import annotations

from typing import Any

import nats

from shared.subjects import EVENTS_STREAM

__all__ = ["dispatcher_lag"]


async def dispatcher_lag(nats_url: str, events: int, delivered: int) -> dict[str, Any]:
    """Undelivered events (of `events` sent, `delivered` counted by the receiver), how many
    messages the stream holds, and how many consumers all streams have together."""
    nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=1)
    try:
        js = nc.jetstream()
        stream = await js.stream_info(EVENTS_STREAM)
        streams = await js.streams_info()
        consumers = sum([len(await js.consumers_info(str(s.config.name))) for s in streams])
        return {
            "events": events,
            "delivered": delivered,
            "undelivered": max(0, events - delivered),
            "stream_messages": int(stream.state.messages),
            "consumers": consumers,
        }
    finally:
        await nc.close()
