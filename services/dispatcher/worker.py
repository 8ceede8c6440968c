"""Delivering one registration's events, in order, from its durable JetStream consumer.

The consumer has `max_ack_pending=1`: JetStream hands out the next event only once the previous
one is acknowledged, so order holds whichever replica fetches, and an event that a crashed
dispatcher never acknowledged is handed out again after `ack_wait` with the same stream sequence
(and so the same `webhook-id`). While a silent callback is retried, `in_progress` keeps the event
from being handed to anyone else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import httpx
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import NotFoundError
from prometheus_client import Counter, Histogram

from services.dispatcher.delivery import (
    Outcome,
    backoff_delay,
    classify,
    webhook_headers,
    webhook_id,
)
from services.dispatcher.settings import DispatcherSettings
from shared.bus import Bus
from shared.codec import render
from shared.events import from_json
from shared.subjects import EVENTS_STREAM
from shared.subscriptions import ACK_WAIT_S, Subscription, delete_subscription

__all__ = ["SubscriptionWorker"]

log = logging.getLogger(__name__)

DELIVERIES = Counter("dispatcher_deliveries_total", "POST attempts by outcome", ["outcome"])
RETRIES = Counter("dispatcher_retries_total", "Retries of unreachable callbacks")
ENDED = Counter("dispatcher_registrations_ended_total", "Registrations ended", ["reason"])
LATENCY = Histogram(
    "dispatcher_delivery_seconds",
    "From event stored in JetStream to callback answered 200",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

FETCH_WAIT_S = 5.0


@dataclass(slots=True)
class Attempt:
    status: int | None
    error: str | None = None


class SubscriptionWorker:
    def __init__(
        self,
        subscription: Subscription,
        bus: Bus,
        client: httpx.AsyncClient,
        settings: DispatcherSettings,
    ) -> None:
        self.subscription = subscription
        self.bus = bus
        self.client = client
        self.settings = settings

    async def run(self) -> None:
        sub = self.subscription
        try:
            pull = await self.bus.js.pull_subscribe_bind(durable=sub.id, stream=EVENTS_STREAM)
        except NotFoundError:
            log.warning("no consumer for %s; ending it", sub.id)
            await self._end("no consumer")
            return
        try:
            while True:
                try:
                    messages = await pull.fetch(1, timeout=FETCH_WAIT_S)
                except (NatsTimeoutError, TimeoutError):
                    continue
                except NotFoundError:
                    return
                for message in messages:
                    if not await self._deliver(message):
                        return
        finally:
            await pull.unsubscribe()

    async def _deliver(self, message: Msg) -> bool:
        """POST one event until it is answered; False if the registration ended."""
        metadata = message.metadata
        body = render(from_json(message.data)).encode()
        msg_id = webhook_id(self.subscription.id, metadata.sequence.stream)
        first_failure: float | None = None
        attempt = 0
        while True:
            result = await self._post(msg_id, body)
            outcome = classify(result.status)
            DELIVERIES.labels(outcome.value).inc()
            if outcome is Outcome.DELIVERED:
                await message.ack()
                if metadata.timestamp is not None:
                    LATENCY.observe(max(0.0, time.time() - metadata.timestamp.timestamp()))
                return True
            if outcome is Outcome.REFUSED:
                log.info("callback answered %s; ending %s", result.status, self.subscription.id)
                await self._end(f"status {result.status}")
                return False
            now = time.monotonic()
            first_failure = first_failure or now
            delay = backoff_delay(
                attempt,
                self.settings.dispatch_backoff_initial_s,
                self.settings.dispatch_backoff_max_s,
            )
            if now + delay - first_failure > self.settings.dispatch_retry_window_s:
                log.info("callback unreachable (%s); ending %s", result.error, self.subscription.id)
                await self._end("unreachable")
                return False
            RETRIES.inc()
            attempt += 1
            await self._keep_while(message, delay)

    async def _keep_while(self, message: Msg, delay: float) -> None:
        """Sleep `delay`, telling JetStream the event is still being worked on."""
        step = ACK_WAIT_S / 3
        remaining = delay
        while remaining > 0:
            await message.in_progress()
            await asyncio.sleep(min(step, remaining))
            remaining -= step

    async def _post(self, msg_id: str, body: bytes) -> Attempt:
        headers = webhook_headers(self.subscription.secret, msg_id, int(time.time()), body)
        try:
            response = await self.client.post(self.subscription.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Attempt(None, f"{type(exc).__name__}: {exc}")
        return Attempt(response.status_code)

    async def _end(self, reason: str) -> None:
        ENDED.labels(reason.split()[0]).inc()
        await delete_subscription(self.bus, self.subscription.id)
