"""Delivering one registration's events, in order, from its durable JetStream consumer.

A thin shell around `delivery.py`: it fetches, POSTs with the client it is given, and acks.

- Order: the consumer has `max_ack_pending=1`, so JetStream hands out the next event only once
  the previous one is acknowledged (or, after a crash, redelivers the unacknowledged one first).
  Order holds whoever fetches, even if two replicas briefly both serve a registration.
- At least once: an event is acknowledged only after its callback answered 200. An event a
  dead dispatcher never acknowledged is handed out again after `ack_wait` with the same stream
  sequence, and so the same `webhook-id`.
- A POST or a retry pause that lasts longer than a third of `ack_wait` is covered by
  `in_progress` acks, so JetStream never redelivers an event that is still being worked on, even
  with `DISPATCH_TIMEOUT_S` or a backoff delay above `ack_wait`.
- Stopping (the registration moved to another replica) is polite: the worker finishes the event
  in hand and stops fetching. Cancelling (the registration was deleted, or shutdown ran out of
  grace) naks the event in hand, so the next owner gets it at once instead of after `ack_wait`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from services.dispatcher.delivery import (
    Outcome,
    RetryPolicy,
    classify,
    webhook_headers,
    webhook_id,
)
from services.dispatcher.http import CallbackClient, NoAnswer
from services.dispatcher.metrics import DELIVERIES, ENDED, LATENCY, RETRIES
from services.dispatcher.settings import DispatcherSettings
from shared.bus import Bus
from shared.codec import render
from shared.events import from_json
from shared.subjects import EVENTS_STREAM
from shared.subscriptions import ACK_WAIT_S, Subscription, delete_subscription

__all__ = ["SubscriptionWorker"]

log = logging.getLogger(__name__)

FETCH_WAIT_S = 5.0  # how long one pull request waits for an event; also the longest stop delay


class SubscriptionWorker:
    def __init__(
        self,
        subscription: Subscription,
        bus: Bus,
        client: CallbackClient,
        settings: DispatcherSettings,
    ) -> None:
        self.subscription = subscription
        self.bus = bus
        self.client = client
        self.settings = settings
        self.retry = RetryPolicy(
            settings.dispatch_retry_window_s,
            settings.dispatch_backoff_initial_s,
            settings.dispatch_backoff_max_s,
        )
        self.stopping = False  # set: finish the event in hand, then return
        self.ended = False  # the registration was ended by this worker
        self._ack_wait = ACK_WAIT_S
        self._current: Msg | None = None  # the event in hand
        self._progress: asyncio.TimerHandle | None = None  # next in_progress for it
        self._progress_sends: set[asyncio.Task[None]] = set()  # in flight, kept referenced

    def stop(self) -> None:
        self.stopping = True

    def resume(self) -> None:
        self.stopping = False

    @property
    def busy(self) -> bool:
        """An event is in hand (being POSTed or waiting for a retry)."""
        return self._current is not None

    async def run(self) -> None:
        sub = self.subscription
        try:
            pull = await self.bus.js.pull_subscribe_bind(durable=sub.id, stream=EVENTS_STREAM)
        except NotFoundError:
            log.warning("no consumer for %s; ending it", sub.id)
            await self._end("no consumer")
            return
        try:  # from here on the pull subscription exists and is always unsubscribed
            try:
                info = await pull.consumer_info()
            except NotFoundError:
                log.warning("no consumer for %s; ending it", sub.id)
                await self._end("no consumer")
                return
            if info.config.ack_wait:
                self._ack_wait = float(info.config.ack_wait)
            await self._loop(pull)
        finally:
            with contextlib.suppress(Exception):
                await pull.unsubscribe()

    async def _loop(self, pull: JetStreamContext.PullSubscription) -> None:
        while not self.stopping:
            try:
                messages = await pull.fetch(1, timeout=FETCH_WAIT_S)
            except (NatsTimeoutError, TimeoutError):
                continue
            except NotFoundError:
                return  # the consumer was deleted: the registration ended
            except Exception as exc:  # NATS away or restarting: try again shortly
                log.info("fetch for %s failed: %r", self.subscription.id, exc)
                await asyncio.sleep(0.5)
                if await self._consumer_gone(pull):
                    log.warning("consumer of %s vanished; ending it", self.subscription.id)
                    await self._end("no consumer")
                    return
                continue
            for message in messages:
                if not await self._deliver(message):
                    return

    async def _consumer_gone(self, pull: JetStreamContext.PullSubscription) -> bool:
        try:
            await pull.consumer_info()
        except NotFoundError:
            return True
        except Exception:  # cannot tell now (NATS away): assume it is there
            return False
        return False

    async def _deliver(self, message: Msg) -> bool:
        """POST one event until it is answered; False if the registration ended."""
        self._current = message
        self._progress = asyncio.get_running_loop().call_later(
            self._ack_wait / 3, self._progress_due
        )
        try:
            return await self._deliver_held(message)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await message.nak()
            raise
        finally:
            self._current = None
            self._progress.cancel()

    async def _deliver_held(self, message: Msg) -> bool:
        metadata = message.metadata
        try:
            event = from_json(message.data)
        except ValueError as exc:  # never published by chat; cannot be rendered
            log.error("dropping malformed event %s: %s", metadata.sequence.stream, exc)
            await message.term()
            return True
        body = render(event).encode()
        msg_id = webhook_id(self.subscription.id, metadata.sequence.stream)
        first_failure = 0.0
        attempt = 0
        while True:
            status, error = await self._post(msg_id, body)
            outcome = classify(status)
            DELIVERIES.labels(outcome.value).inc()
            if outcome is Outcome.DELIVERED:
                await self._ack(message)
                if metadata.timestamp is not None:
                    LATENCY.observe(max(0.0, time.time() - metadata.timestamp.timestamp()))
                return True
            if outcome is Outcome.REFUSED:
                log.info("callback answered %s; ending %s", status, self.subscription.id)
                await self._end("status")
                return False
            now = time.monotonic()
            if attempt == 0:
                first_failure = now
            delay = self.retry.next_delay(attempt, first_failure, now)
            if delay is None:
                log.info("callback unreachable (%s); ending %s", error, self.subscription.id)
                await self._end("unreachable")
                return False
            RETRIES.inc()
            attempt += 1
            await asyncio.sleep(delay)

    async def _post(self, msg_id: str, body: bytes) -> tuple[int | None, str | None]:
        """The status the callback answered, or None and why there was no answer."""
        headers = webhook_headers(self.subscription.secret, msg_id, int(time.time()), body)
        try:
            return await self.client.post(self.subscription.url, body, headers), None
        except NoAnswer as exc:
            return None, str(exc)

    async def _ack(self, message: Msg) -> None:
        try:
            await message.ack()
        except Exception as exc:  # redelivered later with the same webhook-id
            log.warning("ack failed for %s: %r", self.subscription.id, exc)

    def _progress_due(self) -> None:
        """Every third of ack_wait while an event is held: tell JetStream it is in progress.
        (A timer per held event rather than a task per worker: idle workers cost nothing.)"""
        message = self._current
        if message is None:
            return
        send = asyncio.ensure_future(self._send_progress(message))
        self._progress_sends.add(send)
        send.add_done_callback(self._progress_sends.discard)
        self._progress = asyncio.get_running_loop().call_later(
            self._ack_wait / 3, self._progress_due
        )

    @staticmethod
    async def _send_progress(message: Msg) -> None:
        with contextlib.suppress(Exception):
            await message.in_progress()

    async def _end(self, reason: str) -> None:
        """Remove the registration (KV entry, then consumer). Shielded: deleting the KV entry
        makes the supervisor cancel this worker, and the consumer must still go, or it would
        keep its events in the stream for ever."""
        ENDED.labels(reason).inc()
        self.ended = True
        await asyncio.shield(self._remove())

    async def _remove(self) -> None:
        while True:  # until NATS takes it
            try:
                await delete_subscription(self.bus, self.subscription.id)
                return
            except Exception as exc:
                log.warning("cannot end %s yet: %r", self.subscription.id, exc)
                await asyncio.sleep(1)
