"""How far the dispatcher is behind: read from JetStream, not from the dispatcher's word."""

from __future__ import annotations

from typing import Any

import nats

from shared.subjects import EVENTS_STREAM

__all__ = ["dispatcher_lag"]


async def dispatcher_lag(nats_url: str) -> dict[str, Any]:
    """Undelivered events: sum of `num_pending + num_ack_pending` over the events stream's
    consumers (one per registration), and how many messages the stream still holds."""
    nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=1)
    try:
        js = nc.jetstream()
        stream = await js.stream_info(EVENTS_STREAM)
        consumers = await js.consumers_info(EVENTS_STREAM)
        undelivered = sum(int(c.num_pending or 0) + int(c.num_ack_pending or 0) for c in consumers)
        return {
            "undelivered": undelivered,
            "stream_messages": int(stream.state.messages),
            "consumers": len(consumers),
        }
    finally:
        await nc.close()
