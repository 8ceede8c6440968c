"""An ordered consumer whose messages are handled in nats-py's read loop, with no `Msg` object,
queue or task per message: what nats-py's `ordered_consumer=True` does, at the cost the chat can
afford for reading every event of the stream (docs/design.md, "Chat replicas").

The consumer is ephemeral, in memory, without acks, pushing to an inbox of this connection with
flow control and idle heartbeats. Each message's stream and consumer sequences and time are read
from its reply subject (`$JS.ACK...`). When a consumer sequence is skipped, a heartbeat says
more was delivered than was seen, or nothing (not even a heartbeat) arrived for three heartbeat
intervals (NATS restarted, the consumer was lost), the consumer is made again from the stream
sequence after the last one handled, so no message is skipped and none is handled twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from shared.natsclient import Client, parse_headers

__all__ = ["OnMessage", "OrderedTail"]

log = logging.getLogger(__name__)

# (stream sequence, stored at in unix seconds, subject, payload, headers)
OnMessage = Callable[[int, float, str, bytes, dict[str, str]], None]

HEARTBEAT_S = 2.0


class OrderedTail:
    def __init__(
        self, nc: Client, js: JetStreamContext, stream: str, subjects: str, on: OnMessage
    ) -> None:
        self.nc = nc
        self.js = js
        self.stream = stream
        self.subjects = subjects
        self.on = on
        self.last_seq = 0  # the stream sequence of the last message handled
        self._cseq = 0  # the consumer sequence of the last message of the current consumer
        self._consumer = b""
        self._sub: Subscription | None = None
        self._seen = time.monotonic()
        self._stale = False
        self._watch: asyncio.Task[None] | None = None
        self._answers: set[asyncio.Future[None]] = set()

    async def start(self, start_seq: int) -> None:
        """Every message from `start_seq` on, until `stop`. A consumer that cannot be made yet
        (NATS away, a stream leader being elected) is made by the watchdog as soon as it can."""
        self.last_seq = start_seq - 1
        self._watch = asyncio.create_task(self._watchdog())
        try:
            await self._create()
        except Exception as exc:
            log.info("cannot make the ordered consumer on %s yet: %r", self.stream, exc)
            self._stale = True

    async def _create(self) -> None:
        await self._unsubscribe()
        inbox = self.nc.new_inbox()
        self._sub = sub = await self.nc.subscribe(inbox)
        self.nc.handle_inline(sub._id, self._message)
        config = ConsumerConfig(
            deliver_subject=inbox,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=self.last_seq + 1,
            ack_policy=AckPolicy.NONE,
            filter_subject=self.subjects,
            flow_control=True,
            idle_heartbeat=HEARTBEAT_S,
            mem_storage=True,
            num_replicas=1,
            inactive_threshold=5 * HEARTBEAT_S,
        )
        self._cseq, self._consumer, self._stale = 0, b"", False
        self._seen = time.monotonic()
        info = await self.js.add_consumer(self.stream, config)
        self._consumer = info.name.encode()

    def _message(self, subject: bytes, reply: bytes, data: bytes, raw: bytes) -> None:
        self._seen = time.monotonic()
        if self._stale:
            return
        if not reply.startswith(b"$JS.ACK."):
            self._control(reply, raw)
            return
        tokens = reply.split(b".")
        base = 2 if len(tokens) == 9 else 4  # with or without domain and account hash
        consumer = tokens[base + 1]
        sseq, cseq, stamp = tokens[base + 3 : base + 6]
        if consumer != self._consumer and self._consumer:
            return  # a message of a consumer made before
        if int(cseq) != self._cseq + 1:
            self._reset(f"consumer sequence {int(cseq)} after {self._cseq}")
            return
        self._cseq = int(cseq)
        seq = int(sseq)
        if seq <= self.last_seq:
            return
        self.last_seq = seq
        _, headers = parse_headers(raw)
        self.on(seq, int(stamp) / 1e9, subject.decode(), data, headers)

    def _control(self, reply: bytes, raw: bytes) -> None:
        """A heartbeat or a flow control request (status 100)."""
        status, headers = parse_headers(raw)
        if status != "100":
            return
        for answer in (reply.decode(), headers.get("Nats-Consumer-Stalled")):
            if answer:  # flow control: answered, or the server stops sending
                task = asyncio.ensure_future(self.nc.publish(answer))
                self._answers.add(task)
                task.add_done_callback(self._answers.discard)
        last = headers.get("Nats-Last-Consumer")
        if last is not None and int(last) > self._cseq:
            self._reset(f"the consumer delivered {last}, {self._cseq} seen")

    def _reset(self, why: str) -> None:
        if not self._stale:
            log.warning("ordered consumer on %s made again: %s", self.stream, why)
            self._stale = True

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            if self._stale or time.monotonic() - self._seen > 3 * HEARTBEAT_S:
                try:
                    await self._create()
                except Exception as exc:  # NATS still away: try at the next round
                    log.info("cannot make the ordered consumer again yet: %r", exc)
                    self._stale = True

    async def _unsubscribe(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        await self._unsubscribe()
