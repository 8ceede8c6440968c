"""The chaos run's callback receivers: the project's recording receiver
(`shared/callback_receiver.py`), served on the run's own event loop, always answering 200, so
no registration may ever be ended for what the run did to the system.

Each keeps every POST in arrival order; `deliveries` groups them by registration (the
`webhook-id` is `<subscription id>_<stream sequence>`) with the event each one carried.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from bench.chaos.check import Delivery
from shared.callback_receiver import Recorder, RecordingProtocol
from shared.codec import parse
from shared.events import compact_json, event_to_dict

__all__ = ["Receiver", "deliveries"]


class Receiver:
    """One receiver on 127.0.0.1: `prefix` is what the registry must admit."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.recorder = Recorder()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: RecordingProtocol(self.recorder), "127.0.0.1", 0
        )
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def prefix(self) -> str:
        return f"http://127.0.0.1:{self.port}/cb"

    def close(self) -> None:
        if self._server is not None:
            self._server.close()


def deliveries(receivers: list[Receiver]) -> tuple[dict[str, list[Delivery]], int]:
    """Every POST by registration, in arrival order, and how many POSTs could not be read
    (no `webhook-id` of the right form, or a body that is not an event)."""
    found: dict[str, list[Delivery]] = defaultdict(list)
    unreadable = 0
    for receiver in receivers:
        for post in receiver.recorder.received:
            sub_id, _, seq = post.headers.get("webhook-id", "").rpartition("_")
            try:
                data = compact_json(event_to_dict(parse(post.body)))
                found[sub_id].append(Delivery(int(seq), data))
            except ValueError:
                unreadable += 1
    return found, unreadable
