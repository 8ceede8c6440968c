"""Batched direct gets: a stream's messages on some subjects after a sequence, in one request.

JetStream answers a direct get (`$JS.API.DIRECT.GET.<stream>` with `batch` and
`next_by_subj`) from the stream itself, on any of its replicas, with no consumer: the
messages, then an end-of-batch status that says how many more match. The dispatcher reads a
room's events and a partition's positions this way, and the registry scans its buckets.
Replies arrive on one wildcard inbox per connection, handled in nats-py's read loop.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from dataclasses import dataclass
from datetime import datetime

from shared.natsclient import Client, parse_headers

__all__ = ["DirectReader", "Stored"]

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Stored:
    """One message as a direct get returns it."""

    seq: int
    stored_at: float
    subject: str
    data: bytes
    headers: dict[str, str]

    @property
    def deleted(self) -> bool:
        """A KV delete or purge marker."""
        return self.headers.get("KV-Operation") in ("DEL", "PURGE")


def _stored_at(stamp: str) -> float:
    """RFC 3339 with nanoseconds, as JetStream writes it, to unix seconds."""
    head, _, rest = stamp.partition(".")
    fraction = rest.rstrip("Z")[:6]
    moment = datetime.fromisoformat(f"{head}.{fraction or '0'}+00:00")
    return moment.timestamp()


class _Batch:
    def __init__(self) -> None:
        self.messages: list[Stored] = []
        self.pending = -1  # events of the room after this batch; -1 until the end is known
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class DirectReader:
    """Batched direct gets, answered on one wildcard inbox."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self._prefix = nc.new_inbox()
        self._ids = itertools.count(1)
        self._batches: dict[str, _Batch] = {}
        self._ready: asyncio.Future[None] | None = None

    async def _subscribe(self) -> None:
        sub = await self.nc.subscribe(self._prefix + ".*")
        self.nc.handle_inline(sub._id, self._reply)

    def _reply(self, inbox: bytes, _reply: bytes, data: bytes, raw_headers: bytes) -> None:
        batch = self._batches.get(inbox.decode().rsplit(".", 1)[1])
        if batch is None or batch.done.done():
            return
        status, headers = parse_headers(raw_headers)
        if status == "404":  # nothing after that sequence
            batch.pending = 0
            batch.done.set_result(None)
        elif status:  # 204 end of batch, or an error status
            batch.pending = int(headers.get("Nats-Num-Pending", "-1") or -1)
            if status != "204":
                log.warning("direct get answered %s %s", status, headers)
            batch.done.set_result(None)
        else:
            seq = int(headers["Nats-Sequence"])
            stored_at = _stored_at(headers.get("Nats-Time-Stamp", "1970-01-01T00:00:00Z"))
            subject = headers.get("Nats-Subject", "")
            batch.messages.append(Stored(seq, stored_at, subject, data, headers))

    async def read(
        self, stream: str, subjects: str, after: int, count: int
    ) -> tuple[list[Stored], bool]:
        """Up to `count` messages of `stream` on `subjects` after sequence `after`, in order,
        and whether it held no more of them when it answered. Raises TimeoutError if NATS is
        away."""
        if self._ready is None or (self._ready.done() and self._ready.exception()):
            self._ready = asyncio.ensure_future(self._subscribe())
        await self._ready
        token = str(next(self._ids))
        batch = _Batch()
        self._batches[token] = batch
        request = {"seq": after + 1, "next_by_subj": subjects, "batch": count}
        try:
            await self.nc.publish(
                f"$JS.API.DIRECT.GET.{stream}",
                json.dumps(request).encode(),
                reply=f"{self._prefix}.{token}",
            )
            async with asyncio.timeout(READ_TIMEOUT_S):
                await batch.done
        finally:
            del self._batches[token]
        if batch.pending < 0:
            raise TimeoutError("direct get ended without saying what is left")
        return batch.messages, batch.pending == 0
