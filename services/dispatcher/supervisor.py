"""One replica's share of the delivery: the partitions it owns, a feed per registration in them,
one tail over the stream that feeds them, and the tasks that deliver.

Inputs: the registrations (`registrations.py`) and the live replicas (`membership.py`);
`assignment.owned_partitions` turns the latter into the partitions served here.

Taking a partition over reads its positions and watermark (`positions.py`) and starts a feed
for each of its registrations where it stands. A feed at or past the tail's sequence is live
at once; the tail is moved back (at most `DISPATCH_REWIND_MAX` events) to the lowest watermark
taken over, so registrations that were idle when the previous owner last wrote the watermark
need no read of their own. Feeds of the other partitions take no event twice (`feed.py`).
Giving a partition up retires its feeds: the POST in hand is finished and its position stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.dispatcher.assignment import owned_partitions
from services.dispatcher.feed import Feed
from services.dispatcher.flusher import Flusher
from services.dispatcher.http import CallbackClient
from services.dispatcher.membership import Membership
from services.dispatcher.metrics import MEMBERS, PARTITIONS, REGISTRATIONS
from services.dispatcher.migration import migrate
from services.dispatcher.positions import load_partition
from services.dispatcher.registrations import RegistrationFollower
from services.dispatcher.settings import DispatcherSettings
from services.dispatcher.stall import LoopWatch
from services.dispatcher.stream import Tail, held_event
from services.dispatcher.worker import Deliverer, expired
from shared.attempts import ensure_attempts_stream
from shared.bus import Bus
from shared.positions import partition_of
from shared.subjects import EVENTS_STREAM, room_token
from shared.subscriptions import Subscription

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)


class Supervisor:
    def __init__(
        self, bus: Bus, client: CallbackClient, settings: DispatcherSettings, replica_id: str
    ) -> None:
        self.bus = bus
        self.settings = settings
        self.me = replica_id
        self.registrations: dict[str, tuple[Subscription, int]] = {}  # id: (it, revision)
        self.follower = RegistrationFollower(bus, self._added, self._removed)
        self.members: list[str] = [replica_id]
        self.owned: set[int] = set()
        self.feeds: dict[str, Feed] = {}
        self.by_room: dict[str, dict[str, Feed]] = {}  # room token: id: feed
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.tail_seq = 0  # the last sequence the tail has offered
        self.tail = Tail(bus, self._on_event)
        self.tailing = False
        self._moving_tail = asyncio.Lock()  # one takeover or restart of the tail at a time
        self.watch = LoopWatch()
        self.flusher = Flusher(bus, self._kick)
        self.reader = bus.direct
        self.deliverer = Deliverer(
            bus, client, settings, self.reader, self.watch, self.flusher.touch
        )
        self.membership = Membership(
            bus,
            replica_id,
            settings.dispatch_heartbeat_s,
            settings.dispatch_member_ttl_s,
            settings.nats_replicas,
            self._members_changed,
        )
        self._rebalance_due = asyncio.Event()
        self._releases: set[asyncio.Task[None]] = set()  # positions of given-up feeds, storing

    async def run(self) -> None:
        """Serve until cancelled; then store every position and leave the membership."""
        with contextlib.suppress(Exception):
            await self.membership.beat()  # know the others before taking anything
        self.follower.restart()
        await self.follower.loaded.wait()
        while True:
            try:
                await migrate(self.bus, self.registrations)
                await ensure_attempts_stream(
                    self.bus.js, self.settings.events_max_age_s, self.settings.nats_replicas
                )
                break
            except Exception as exc:  # NATS away: the old consumers wait
                log.warning("migrating registrations failed, trying again: %r", exc)
                await asyncio.sleep(1)
        self._rebalance_due.set()  # the first takeover, retried like any other
        tasks = [
            asyncio.create_task(self.membership.run(), name="membership"),
            asyncio.create_task(self.watch.run(), name="loop-watch"),
            asyncio.create_task(self._rebalancer(), name="rebalance"),
            asyncio.create_task(self._flushing(), name="flush"),
            asyncio.create_task(self._marking(), name="watermarks"),
            asyncio.create_task(self._reconnects(), name="reconnects"),
            asyncio.create_task(self.deliverer.attempts.run(), name="attempts"),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks[1:]:
                task.cancel()
            await self.stop_all(self.settings.shutdown_grace_s)
            self.deliverer.attempts.send()
            tasks[0].cancel()  # leaves the membership, now that positions are stored
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.follower.stop()

    # -- registrations -----------------------------------------------------------------------

    def _added(self, sub: Subscription, revision: int) -> None:
        known = self.registrations.get(sub.id)
        if known is not None and known[1] == revision:
            return
        if known is not None:  # ended and made again (same room and URL) while we looked away
            self._removed(sub.id)
        self.registrations[sub.id] = (sub, revision)
        if partition_of(sub.room) in self.owned:
            # made by a registry of the design before positions, during an upgrade: from now
            at = self.tail_seq if sub.start_seq is None else sub.start_seq
            self._install(sub, revision, at, 0, live=at >= self.tail_seq)
            REGISTRATIONS.set(len(self.feeds))

    def _removed(self, sub_id: str) -> None:
        if self.registrations.pop(sub_id, None) is None:
            return
        feed = self._uninstall(sub_id)
        if feed is not None:
            self.flusher.drop([feed])
            task = self.tasks.get(sub_id)
            if task is not None and not feed.ended:
                task.cancel()  # deleted: stop at once
            REGISTRATIONS.set(len(self.feeds))

    # -- feeds -------------------------------------------------------------------------------

    def _install(self, sub: Subscription, entry: int, at: int, revision: int, live: bool) -> None:
        feed = Feed(sub, entry, at, self.settings.dispatch_read_ahead, live)
        feed.position_revision = revision
        self.feeds[sub.id] = feed
        self.by_room.setdefault(room_token(sub.room), {})[sub.id] = feed
        if not live:
            self._kick(feed)

    def _uninstall(self, sub_id: str) -> Feed | None:
        feed = self.feeds.pop(sub_id, None)
        if feed is None:
            return None
        feed.retired = True
        token = room_token(feed.sub.room)
        room = self.by_room.get(token, {})
        room.pop(sub_id, None)
        if not room:
            self.by_room.pop(token, None)
        return feed

    def _kick(self, feed: Feed) -> None:
        """Make sure a task delivers for `feed` (it has work)."""
        self.flusher.touch(feed)
        if feed.sub.id in self.tasks or feed.retired:
            return
        task = asyncio.create_task(self._serve(feed), name=f"deliver-{feed.sub.id}")
        self.tasks[feed.sub.id] = task

    async def _serve(self, feed: Feed) -> None:
        """Deliver, and leave `tasks` the moment there is nothing left: an event offered after
        that starts a new task (were the task left there until a done callback ran, an offer
        in between would find it and start none)."""
        try:
            await self.deliverer.serve(feed)
        except Exception:
            log.exception("delivery for %s failed", feed.sub.id)
            asyncio.get_running_loop().call_later(1.0, self._kick_again, feed)
        finally:
            if self.tasks.get(feed.sub.id) is asyncio.current_task():
                del self.tasks[feed.sub.id]

    def _kick_again(self, feed: Feed) -> None:
        if self.feeds.get(feed.sub.id) is feed:
            self._kick(feed)

    def _on_event(self, token: str, seq: int, stored_at: float, data: bytes) -> None:
        """The tail's next event: offered to the live feeds of its room."""
        self.tail_seq = seq
        feeds = self.by_room.get(token)
        if not feeds:
            return
        event = None  # rendered only if a feed takes it
        for feed in feeds.values():
            if feed.takes(seq):
                event = event or held_event(seq, stored_at, data)
                feed.offer(event)
            else:
                feed.offer_missed(seq)
            if feed.catching_up or feed.held:
                self._kick(feed)

    # -- partitions --------------------------------------------------------------------------

    def _members_changed(self, members: list[str]) -> None:
        self.members = members
        MEMBERS.set(len(members))
        self._rebalance_due.set()

    async def _rebalancer(self) -> None:
        while True:
            await self._rebalance_due.wait()
            self._rebalance_due.clear()
            try:
                await self._rebalance()
            except Exception as exc:  # NATS away: try again shortly
                log.warning("taking partitions over failed: %r", exc)
                await asyncio.sleep(1)
                self._rebalance_due.set()

    async def _rebalance(self) -> None:
        wanted = owned_partitions(self.me, self.members)
        lost = self.owned - wanted
        if lost:
            self._release(lost)
        gained = wanted - self.owned
        if gained or not self.tailing:
            await self._acquire(gained)
        PARTITIONS.set(len(self.owned))
        REGISTRATIONS.set(len(self.feeds))

    def _release(self, partitions: set[int]) -> None:
        self.owned -= partitions
        released = []
        for sub_id, feed in list(self.feeds.items()):
            if partition_of(feed.sub.room) in partitions:
                self._uninstall(sub_id)
                released.append(feed)
        self.flusher.forget(partitions)
        log.info("giving up partitions %s (%s registrations)", sorted(partitions), len(released))
        waits = [self.tasks[f.sub.id] for f in released if f.sub.id in self.tasks]
        task = asyncio.create_task(self._store_released(released, waits), name="release")
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _store_released(self, feeds: list[Feed], waits: list[asyncio.Task[None]]) -> None:
        if waits:
            await asyncio.wait(waits, timeout=self.settings.dispatch_timeout_s + 1)
        await self.flusher.flush(feeds)
        self.flusher.drop(feeds)

    async def _acquire(self, partitions: set[int]) -> None:
        async with self._moving_tail:
            await self._take(partitions)

    async def _take(self, partitions: set[int]) -> None:
        loaded = dict(
            zip(
                partitions,
                await asyncio.gather(*(load_partition(self.reader, p) for p in partitions)),
                strict=True,
            )
        )
        stream = (await self.bus.js.stream_info(EVENTS_STREAM)).state
        last, first = int(stream.last_seq), int(stream.first_seq)
        floor = max(0, last - self.settings.dispatch_rewind_max)
        target = self.tail_seq if self.tailing else last
        for state in loaded.values():
            mark = state.watermark.seq if state.watermark else last
            target = min(target, max(mark, floor))
        rewind = not self.tailing or target < self.tail_seq
        if rewind:
            await self.tail.stop()
            target = min(target, self.tail_seq) if self.tailing else target
            self.tail_seq = target
        self.owned |= partitions
        installed = 0
        for sub, revision in list(self.registrations.values()):
            found = loaded.get(partition_of(sub.room))
            if found is not None and sub.id not in self.feeds:
                at, position_revision = found.start_of(sub, revision)
                live = at >= self.tail_seq
                self._install(sub, revision, at, position_revision, live)
                installed += 1
                if live and at + 1 < first <= last:
                    expired(sub, at, first)
        if rewind:
            await self.tail.start(self.tail_seq + 1)
            self.tailing = True
        log.info(
            "serving partitions %s (%s registrations) from sequence %s",
            sorted(partitions),
            installed,
            self.tail_seq,
        )

    # -- upkeep ------------------------------------------------------------------------------

    async def _flushing(self) -> None:
        while True:
            await asyncio.sleep(self.settings.dispatch_flush_s)
            await self.flusher.flush()

    async def _marking(self) -> None:
        while True:
            await asyncio.sleep(self.settings.dispatch_watermark_s)
            await self.flusher.mark(self.owned, self.tail_seq, self.follower.entries_seen)

    async def _reconnects(self) -> None:
        """After NATS reconnected, follow the registrations and the stream again (a watch or
        an ephemeral consumer may not survive a restarted server); nothing is skipped: the
        tail goes on after the last event it offered."""
        seen = int(self.bus.nc.stats.get("reconnects", 0))
        while True:
            await asyncio.sleep(1)
            now = int(self.bus.nc.stats.get("reconnects", 0))
            if now != seen:
                seen = now
                log.info("NATS reconnected: following registrations and the stream again")
                self.follower.restart()
                with contextlib.suppress(Exception):
                    async with self._moving_tail:
                        await self.tail.start(self.tail_seq + 1)

    async def stop_all(self, grace_s: float) -> None:
        """Retire every feed, let POSTs in hand finish for up to `grace_s` (less the time to
        store positions), then store every position and watermark."""
        await self.tail.stop()
        feeds = list(self.feeds.values())
        for feed in feeds:
            feed.retired = True
        tasks = list(self.tasks.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=max(grace_s - 3, 0.1))
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await self.flusher.flush(feeds)
                await self.flusher.mark(self.owned, self.tail_seq, self.follower.entries_seen)
