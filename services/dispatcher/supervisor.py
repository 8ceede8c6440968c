"""Keeps one worker running for every registration in the KV bucket, and none for the rest."""

from __future__ import annotations

import asyncio
import functools
import logging

import httpx
from prometheus_client import Gauge

from services.dispatcher.settings import DispatcherSettings
from services.dispatcher.worker import SubscriptionWorker
from shared.bus import Bus
from shared.subscriptions import Subscription

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)

WORKERS = Gauge("dispatcher_workers", "Registrations this dispatcher is serving")


class Supervisor:
    def __init__(self, bus: Bus, client: httpx.AsyncClient, settings: DispatcherSettings) -> None:
        self.bus = bus
        self.client = client
        self.settings = settings
        self.workers: dict[str, asyncio.Task[None]] = {}

    async def run(self) -> None:
        """Follow the bucket (existing entries first, then every change) until cancelled."""
        try:
            while True:
                try:
                    await self._watch()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("registration watch failed, restarting it: %s", exc)
                    await asyncio.sleep(1)
        finally:
            await self.stop_all()

    async def _watch(self) -> None:
        watcher = await self.bus.subscriptions.watchall()
        try:
            async for entry in watcher:
                if entry is None:  # the initial values have all been seen
                    continue
                if entry.operation in ("DEL", "PURGE") or entry.value is None:
                    self._stop(entry.key)
                else:
                    self._start(Subscription.from_json(entry.value))
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]

    def _start(self, subscription: Subscription) -> None:
        if subscription.id in self.workers and not self.workers[subscription.id].done():
            return
        worker = SubscriptionWorker(subscription, self.bus, self.client, self.settings)
        task = asyncio.create_task(worker.run(), name=f"deliver-{subscription.id}")
        task.add_done_callback(functools.partial(self._finished, subscription.id))
        self.workers[subscription.id] = task
        WORKERS.set(len(self.workers))

    def _finished(self, sub_id: str, task: asyncio.Task[None]) -> None:
        if self.workers.get(sub_id) is task:
            del self.workers[sub_id]
            WORKERS.set(len(self.workers))
        if not task.cancelled() and task.exception() is not None:
            log.error("worker for %s failed", sub_id, exc_info=task.exception())

    def _stop(self, sub_id: str) -> None:
        task = self.workers.pop(sub_id, None)
        if task is not None:
            task.cancel()
        WORKERS.set(len(self.workers))

    async def stop_all(self) -> None:
        tasks = list(self.workers.values())
        self.workers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
