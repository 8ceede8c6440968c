"""Delivering one registration's events, in order, from what its `Feed` holds.

A thin shell around `feed.py` and `delivery.py`: while the feed has events in hand it POSTs
them one after another (one request in flight per registration, so order holds and a hanging
callback holds up only itself); when it has none but is catching up, it reads the next batch of
its room from the stream; when it has neither, the task ends, and the tail starts a new one
with the next event it offers.

- At least once: the feed's position moves only when its callback answered 200 (`answered`),
  and it is stored afterwards (`flusher.py`); a replica that dies before storing it has the
  event sent again, with the same `webhook-id` (the subscription id and the stream sequence).
- Never blamed for our faults: a POST that got no answer while this process was stalled
  (starved of CPU, stopped) is tried again at once and does not count, and the retry window is
  counted on a clock that stands still while the process did (`stall.py`). A registration is
  ended only by its callback's answer, or its silence for the whole window.
- Retiring (the partition moved, or shutdown): the POST in hand is finished, nothing more.
- Every POST is recorded (`attempts.py`, without waiting on NATS), and a registration it ends
  leaves a record of why (`shared/ended.py`), with the last event its callback answered 200.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from services.dispatcher.attempts import AttemptLog
from services.dispatcher.delivery import Outcome, RetryPolicy, classify, webhook_headers
from services.dispatcher.feed import Feed, HeldEvent
from services.dispatcher.http import CallbackClient, NoAnswer
from services.dispatcher.metrics import DELIVERIES, ENDED, EXPIRED, LATENCY, RETRIES
from services.dispatcher.settings import DispatcherSettings
from services.dispatcher.stall import LoopWatch
from services.dispatcher.stream import read_room
from shared.bus import Bus
from shared.direct import DirectReader
from shared.ended import Ended, EndedLog, Reason
from shared.ids import webhook_id
from shared.since import rfc3339
from shared.subjects import EVENTS_STREAM
from shared.subscriptions import Subscription, delete_subscription

__all__ = ["Deliverer", "expired"]

log = logging.getLogger(__name__)

_COUNTED = {outcome: DELIVERIES.labels(outcome.value) for outcome in Outcome}

READ_RETRY_S = 0.5
FIRST_SEQ_MAX_AGE_S = 1.0  # how old the stream's first sequence may be when checked


class Deliverer:
    def __init__(
        self,
        bus: Bus,
        client: CallbackClient,
        settings: DispatcherSettings,
        reader: DirectReader,
        watch: LoopWatch,
        progressed: Callable[[Feed], None],
    ) -> None:
        self.bus = bus
        self.client = client
        self.reader = reader
        self.watch = watch
        self.progressed = progressed  # told after every answered event
        self.retry = RetryPolicy(
            settings.dispatch_retry_window_s,
            settings.dispatch_backoff_initial_s,
            settings.dispatch_backoff_max_s,
        )
        self.reads = asyncio.Semaphore(settings.dispatch_read_concurrency)
        self.attempts = AttemptLog(bus)
        self.ended = EndedLog(settings.events_max_age_s, settings.nats_replicas)
        self._first_seq = (0, float("-inf"))  # (stream's first sequence, when read)

    async def serve(self, feed: Feed) -> None:
        """Deliver until the feed has nothing in hand and nothing to read, or is retired."""
        while not feed.retired:
            event = feed.head()
            if event is None:
                if not feed.catching_up:
                    return
                await self._read(feed)
                continue
            if event.body is None or await self._deliver(feed, event):
                feed.answered(event)
                self.progressed(feed)
            elif feed.ended:
                return

    async def _read(self, feed: Feed) -> None:
        try:
            async with self.reads:
                await self._check_expired(feed)
                events, exhausted = await read_room(
                    self.reader, feed.sub.room, feed.last_held, feed.wanted()
                )
        except Exception as exc:  # NATS away or slow: the feed keeps its place
            log.info("reading %s for %s failed: %r", feed.sub.room, feed.sub.id, exc)
            await asyncio.sleep(READ_RETRY_S)
            return
        feed.fill(events, exhausted)

    async def _check_expired(self, feed: Feed) -> None:
        """Count and log a registration whose position is older than the oldest event the
        stream holds: events of its room may have aged out before it received them."""
        first, read_at = self._first_seq
        if feed.last_held + 1 >= first and time.monotonic() - read_at < FIRST_SEQ_MAX_AGE_S:
            return
        info = await self.bus.js.stream_info(EVENTS_STREAM)
        first = int(info.state.first_seq)
        self._first_seq = (first, time.monotonic())
        if feed.last_held + 1 < first:
            expired(feed.sub, feed.last_held, first)

    async def _deliver(self, feed: Feed, event: HeldEvent) -> bool:
        """POST one event until it is answered 200 (True), the registration ends or the feed
        is retired (False)."""
        assert event.body is not None
        msg_id = webhook_id(feed.sub.id, event.seq)
        attempt = 0
        first_failure = 0.0
        while True:
            started, wall = time.monotonic(), time.time()
            status, error = await self._post(feed, msg_id, event.body)
            self.attempts.record(feed.sub.id, msg_id, wall, status, error)
            outcome = classify(status)
            _COUNTED[outcome].inc()
            if outcome is Outcome.DELIVERED:
                LATENCY.observe(max(0.0, time.time() - event.stored_at))
                feed.last_answered = event.seq
                return True
            if outcome is Outcome.REFUSED:
                log.info("callback answered %s; ending %s", status, feed.sub.id)
                await self._end(feed, "status", status)
                return False
            if feed.retired:
                return False
            if self.watch.stalled_since(started):
                log.info("no answer from %s while this process stalled: not counted", feed.sub.id)
                continue
            now = self.watch.running()
            if attempt == 0:
                first_failure = now
            delay = self.retry.next_delay(attempt, first_failure, now)
            if delay is None:
                log.info("callback unreachable (%s); ending %s", error, feed.sub.id)
                await self._end(feed, "no_answer")
                return False
            RETRIES.inc()
            attempt += 1
            await asyncio.sleep(delay)

    async def _post(self, feed: Feed, msg_id: str, body: bytes) -> tuple[int | None, str | None]:
        headers = webhook_headers(feed.sub.secret, msg_id, int(time.time()), body)
        try:
            return await self.client.post(feed.sub.url, body, headers), None
        except NoAnswer as exc:
            return None, str(exc)

    async def _end(self, feed: Feed, reason: Reason, status: int | None = None) -> None:
        """Remove the registration that was read (its revision) and record why, retrying while
        NATS is away. Shielded: the entry's deletion makes the supervisor retire this feed.
        The attempts that ended it are published first, so whoever sees the end sees them."""
        ENDED.labels("unreachable" if reason == "no_answer" else reason).inc()
        feed.ended = True
        self.attempts.send()
        await asyncio.shield(self._remove(feed, reason, status))

    async def _remove(self, feed: Feed, reason: Reason, status: int | None) -> None:
        while True:
            try:
                gone = await delete_subscription(self.bus, feed.sub.id, revision=feed.entry)
                break
            except Exception as exc:
                log.warning("cannot end %s yet: %r", feed.sub.id, exc)
                await asyncio.sleep(1)
        if gone is None:  # deleted or ended meanwhile, by someone who recorded why
            return
        last = max(feed.last_answered, gone.delivered)
        ended = Ended(
            id=feed.sub.id,
            room=feed.sub.room,
            url=feed.sub.url,
            ended_at=rfc3339(time.time(), digits=0),
            reason=reason,
            status=status,
            last_webhook_id=webhook_id(feed.sub.id, last) if last else None,
        )
        while True:
            try:
                await self.ended.record(self.bus, ended)
                return
            except Exception as exc:
                log.warning("cannot record why %s ended yet: %r", feed.sub.id, exc)
                await asyncio.sleep(1)


def expired(sub: Subscription, after: int, first: int) -> None:
    """Count and log a registration whose next events aged out of the stream unreceived."""
    EXPIRED.inc()
    log.warning(
        "events of %s after %s aged out before %s received them; going on from %s",
        sub.room,
        after,
        sub.id,
        first,
    )
