"""Runs one worker for every registration this replica owns, and none for the rest.

Two inputs decide what runs: the registrations (the KV bucket `volano_subscriptions`, followed
by a watch; re-watched and re-listed after NATS reconnects, and re-listed every `RECONCILE_S` in
case a watch missed something) and the live replicas (`membership.py`). `assignment.owned` turns
both into the set this replica serves. A registration that moves to another replica is stopped
politely (the event in hand is finished first); one that is deleted is cancelled at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time

from nats.js.errors import NoKeysError

from services.dispatcher.assignment import owned, owner
from services.dispatcher.http import CallbackClient
from services.dispatcher.membership import Membership
from services.dispatcher.metrics import LAG, MEMBERS, WORKERS
from services.dispatcher.settings import DispatcherSettings
from services.dispatcher.worker import SubscriptionWorker
from shared.bus import Bus
from shared.subjects import EVENTS_STREAM
from shared.subscriptions import Subscription, get_subscription

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)

RECONCILE_S = 30.0


class Supervisor:
    def __init__(
        self,
        bus: Bus,
        client: CallbackClient,
        settings: DispatcherSettings,
        replica_id: str,
    ) -> None:
        self.bus = bus
        self.client = client
        self.settings = settings
        self.me = replica_id
        self.registrations: dict[str, Subscription] = {}
        self.members: list[str] = [replica_id]
        self.workers: dict[str, tuple[SubscriptionWorker, asyncio.Task[None]]] = {}
        self._watch: asyncio.Task[None] | None = None  # follows the registrations bucket
        self.membership = Membership(
            bus,
            replica_id,
            settings.dispatch_heartbeat_s,
            settings.dispatch_member_ttl_s,
            settings.nats_replicas,
            self._members_changed,
        )

    async def run(self) -> None:
        """Serve until cancelled; then leave the membership and stop every worker."""
        # Know the others before serving anything, so that a replica joining a running
        # deployment does not start on work that another replica is doing.
        with contextlib.suppress(Exception):
            await self.membership.beat()
        self._restart_watch()
        tasks = [
            asyncio.create_task(self.membership.run(), name="membership"),
            asyncio.create_task(self._reconcile(), name="reconcile"),
            asyncio.create_task(self._sample_lag(), name="lag"),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            if self._watch is not None:
                tasks.append(self._watch)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # membership leaves here
            await self.stop_all(self.settings.shutdown_grace_s)

    # -- inputs ------------------------------------------------------------------------------

    def _members_changed(self, members: list[str]) -> None:
        self.members = members
        MEMBERS.set(len(members))
        self._rebalance()

    async def _follow_registrations(self) -> None:
        while True:
            try:
                watcher = await self.bus.subscriptions.watchall()
                try:
                    async for entry in watcher:
                        if entry is None:  # the initial values have all been seen
                            continue
                        if entry.operation in ("DEL", "PURGE") or entry.value is None:
                            self._removed(entry.key)
                        else:
                            self._added(Subscription.from_json(entry.value))
                finally:
                    with contextlib.suppress(Exception):
                        await watcher.stop()  # type: ignore[no-untyped-call]
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("registration watch failed, restarting it: %r", exc)
                await asyncio.sleep(1)

    async def _reconcile(self) -> None:
        """Re-list the bucket every RECONCILE_S, and at once after NATS reconnected (a watch
        may not survive a restarted server): a safety net under the watch."""
        reconnects = self._reconnects()
        last = time.monotonic()
        while True:
            await asyncio.sleep(1)
            if self._reconnects() != reconnects:
                reconnects = self._reconnects()
                log.info("NATS reconnected: re-listing registrations")
                self._restart_watch()
            elif time.monotonic() - last < RECONCILE_S:
                continue
            last = time.monotonic()
            try:
                await self._relist()
            except Exception as exc:
                log.info("reconcile failed: %r", exc)

    def _reconnects(self) -> int:
        return int(self.bus.nc.stats.get("reconnects", 0))

    def _restart_watch(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        self._watch = asyncio.create_task(self._follow_registrations(), name="registrations")

    async def _relist(self) -> None:
        try:
            keys = set(await self.bus.subscriptions.keys())
        except NoKeysError:
            keys = set()
        for gone in set(self.registrations) - keys:
            self._removed(gone)
        for key in keys:  # every entry, not only new keys: one may have been made again
            sub = await get_subscription(self.bus, key)
            if sub is not None:
                self._added(sub)

    def _added(self, sub: Subscription) -> None:
        known = self.registrations.get(sub.id)
        if known is not None and known != sub:
            # Deleted and registered again while we did not see the delete (the same room and
            # URL give the same id): a new consumer and a new secret, so a new worker.
            self._removed(sub.id)
        self.registrations[sub.id] = sub
        if sub.id not in self.workers and owner(sub.id, self.members) == self.me:
            self._start(sub)

    def _removed(self, sub_id: str) -> None:
        self.registrations.pop(sub_id, None)
        entry = self.workers.pop(sub_id, None)
        if entry is not None:
            entry[1].cancel()
        WORKERS.set(len(self.workers))

    # -- workers -----------------------------------------------------------------------------

    def _rebalance(self) -> None:
        mine = owned(self.me, self.registrations, self.members)
        for sub_id, (worker, _) in self.workers.items():
            if sub_id in mine:
                worker.resume()
            else:
                worker.stop()
        for sub_id in mine - set(self.workers):
            self._start(self.registrations[sub_id])

    def _start(self, subscription: Subscription) -> None:
        worker = SubscriptionWorker(subscription, self.bus, self.client, self.settings)
        task = asyncio.create_task(worker.run(), name=f"deliver-{subscription.id}")
        task.add_done_callback(functools.partial(self._finished, subscription.id))
        self.workers[subscription.id] = (worker, task)
        WORKERS.set(len(self.workers))

    def _finished(self, sub_id: str, task: asyncio.Task[None]) -> None:
        entry = self.workers.get(sub_id)
        if entry is not None and entry[1] is task:
            del self.workers[sub_id]
            WORKERS.set(len(self.workers))
            worker = entry[0]
            failed = not task.cancelled() and task.exception() is not None
            if failed:
                log.error("worker for %s failed", sub_id, exc_info=task.exception())
            if (failed or not worker.stopping) and not worker.ended:
                # Still ours and not ended (a crash, or the consumer vanished and came back):
                # the next rebalance starts it again.
                asyncio.get_running_loop().call_later(1.0, self._rebalance)

    async def stop_all(self, grace_s: float) -> None:
        """Let every worker finish its event in hand for up to `grace_s`, then cancel."""
        entries = list(self.workers.values())
        self.workers.clear()
        for worker, task in entries:
            worker.stop()
            if not worker.busy:  # only waiting for an event: nothing to finish
                task.cancel()
        tasks = [task for _, task in entries]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=max(grace_s - 1, 0.1))
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        WORKERS.set(0)

    async def _sample_lag(self) -> None:
        """Consumer lag of the registrations served here, summed, every DISPATCH_LAG_SAMPLE_S."""
        while True:
            total = 0
            for sub_id in list(self.workers):
                with contextlib.suppress(Exception):
                    info = await self.bus.js.consumer_info(EVENTS_STREAM, sub_id)
                    total += int(info.num_pending or 0) + int(info.num_ack_pending or 0)
            LAG.set(total)
            await asyncio.sleep(self.settings.dispatch_lag_sample_s)
