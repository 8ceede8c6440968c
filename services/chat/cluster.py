"""This replica's part in the cluster of chat replicas: it joins (rooms read, heartbeat put),
keeps its heartbeat, makes the users of dead replicas leave, saves the rooms it changed, and
fences itself when cut off from NATS too long (services/chat/replicas.py says why).

A member counts as gone when its replica's heartbeat is missing at two heartbeats in a row (one
could have been read just before a new replica's first heartbeat), or when it is this replica's
and no connection here holds it (an `enter` stored after its client had left). Its `exit` is
stored with the room's expected sequence, so when several survivors notice, one `exit` goes out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from services.chat.commit import FateUnknown
from services.chat.connection import Connection
from services.chat.protocol import ChatError
from services.chat.rooms import Member
from services.chat.server import CLOSE_FENCED, CLOSE_SHUTDOWN, ChatServer
from services.chat.snapshots import RESAVE_S
from shared.bus import Bus, BusHolder

__all__ = ["Cluster"]

log = logging.getLogger(__name__)


class Cluster:
    def __init__(self, server: ChatServer, holder: BusHolder) -> None:
        self.server = server
        self.holder = holder
        self.replicas = server.replicas
        self._suspects: set[tuple[str, str, str]] = set()  # (room, user, replica)
        self._leaving: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._resaved = time.monotonic()
        self._read = False  # the rooms have been read from the snapshots and the stream

    async def run(self) -> None:
        bus = await self.holder.wait()
        while True:
            started = time.monotonic()
            try:
                if self.server.serving:
                    await self._keep(bus)
                else:
                    await self._join(bus)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("chat cluster: %r", exc)
                if self.server.serving and self.replicas.fenced:
                    await self._fence()
            pause = self.replicas.beat_s - (time.monotonic() - started)
            await asyncio.sleep(max(0.0, pause))

    async def _join(self, bus: Bus) -> None:
        """Heartbeat, and read the rooms the first time; after fencing the rooms were never
        let go (the stream's reader goes on from where it was once NATS is back)."""
        await self.replicas.beat(bus)
        if not self._read:
            await self.server.roomlog.start(bus)
            self._read = True
        await self.replicas.beat(bus)
        self.server.serving = True
        log.info("chat replica %s serving", self.replicas.me)

    async def _keep(self, bus: Bus) -> None:
        await self.replicas.beat(bus)
        self._sweep()
        await self._save(bus)

    def _sweep(self) -> None:
        live, me = self.replicas.live, self.replicas.me
        suspects: set[tuple[str, str, str]] = set()
        for room in list(self.server.rooms.rooms.values()):
            for member in list(room.members.values()):
                if member.replica == me:
                    held = member.conn is not None and member.conn in self.server.connections
                    if not held:
                        self._leave(room.name, member)
                elif member.replica not in live:
                    suspect = (room.name, member.user, member.replica)
                    if suspect in self._suspects:
                        self._leave(room.name, member)
                    suspects.add(suspect)
        self._suspects = suspects

    def _leave(self, room: str, member: Member) -> None:
        key = (room, member.user)
        if key not in self._leaving:
            log.info("%s left %s with replica %s", member.user, room, member.replica or "?")
            task = asyncio.create_task(self._leave_now(room, member))
            self._leaving[key] = task
            task.add_done_callback(lambda _: self._leaving.pop(key, None))

    async def _leave_now(self, room: str, member: Member) -> None:
        async with self.server.locks.hold(room):
            with contextlib.suppress(ChatError, FateUnknown):
                await self.server.leave(room, member)

    async def _save(self, bus: Bus) -> None:
        server = self.server
        names, server.changed = server.changed, set()
        if time.monotonic() - self._resaved > RESAVE_S:
            self._resaved = time.monotonic()
            names |= {
                r.name
                for r in server.rooms.rooms.values()
                if r.by_conn or (r.permanent and r.history)
            }
        rooms = [server.rooms.rooms.get(name) for name in sorted(names)]
        try:
            await server.snapshots.save(bus, [r for r in rooms if r is not None])
        except Exception:
            server.changed |= names
            raise

    async def _fence(self) -> None:
        """Cut off too long: stop serving; join again under a new id once NATS is back. Its
        users, still in the rooms under the old id, are then made to leave like any dead
        replica's (by whoever sees the id gone, this replica included)."""
        log.error("chat replica %s cut off from NATS: closing its connections", self.replicas.me)
        server = self.server
        server.serving = False
        for conn in list(server.connections):
            conn.closing = True
            conn.close_after_sending(CLOSE_FENCED, "cut off from the event bus; reconnect")
        self._suspects.clear()
        self.replicas.renew()

    async def shutdown(self, give_up_s: float) -> None:
        """SIGTERM: every user still here exits every room, then their sockets are closed.
        If that could not be stored in time the heartbeat is left to expire, and the
        survivors make those users leave."""
        server = self.server
        conns: list[Connection] = list(server.connections)
        for conn in conns:
            conn.closing = True
        everyone = asyncio.gather(*(server.leave_all(c) for c in conns))
        left = True
        try:
            await asyncio.wait_for(everyone, give_up_s)
        except TimeoutError:
            left = False
        for conn in conns:
            conn.close_after_sending(CLOSE_SHUTDOWN, "the chat server is shutting down")
        bus = self.holder.bus
        if bus is not None and left and server.serving:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._save(bus), 2)
            await self.replicas.leave(bus)
