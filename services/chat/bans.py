"""Bans (docs/callbacks.md, `kick type="ban"`): a banned host and member name may not enter any
room for `CHAT_BAN_MINUTES`. Bans live in a NATS KV bucket of the chat's own, each entry with its
own TTL, so they hold across restarts and for every chat replica, and vanish by themselves."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable

from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from services.chat.protocol import ChatError
from shared.bus import BusHolder, LazyBucket

__all__ = ["BANS_BUCKET", "Bans", "ban_keys", "remaining_s"]

BANS_BUCKET = "volano_chat_bans"

log = logging.getLogger(__name__)


def ban_keys(host: str, member: str | None) -> list[str]:
    """KV keys for a host and a member name (hex, so any text makes a valid, distinct key)."""
    keys = ["host." + host.encode("utf-8", "surrogatepass").hex()]
    if member:
        keys.append("member." + member.casefold().encode("utf-8", "surrogatepass").hex())
    return keys


def remaining_s(value: bytes, now: float) -> float:
    """Seconds a stored ban still runs (0 when over or unreadable)."""
    try:
        until = json.loads(value)["until"]
    except (ValueError, KeyError, TypeError):
        return 0.0
    return max(0.0, float(until) - now) if isinstance(until, (int, float)) else 0.0


class Bans:
    def __init__(
        self,
        holder: BusHolder,
        minutes: float,
        replicas: int = 1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._holder = holder
        self.duration_s = minutes * 60
        self._replicas = replicas
        self._clock = clock
        self._lazy_kv = LazyBucket(BANS_BUCKET, manage=False)  # the chat may not update streams

    async def _bucket(self) -> KeyValue:
        if self._lazy_kv.kv is not None:
            return self._lazy_kv.kv
        bus = self._holder.bus
        if bus is None or not bus.connected:
            raise ChatError("unavailable", "the chat cannot check bans right now; try again")
        try:
            return await self._lazy_kv.open(bus.js, self._replicas)
        except Exception as exc:
            log.warning("cannot open the bans bucket: %s", exc)
            raise ChatError("unavailable", "the chat cannot check bans right now") from exc

    async def prepare(self) -> None:
        """Create the bucket early (at start-up), so the first entrant does not wait for it."""
        with contextlib.suppress(ChatError):
            await self._bucket()

    async def ban(self, host: str, member: str | None, by: str) -> None:
        await self._bucket()
        until = self._clock() + self.duration_s
        value = json.dumps({"until": until, "by": by}).encode()
        bus = self._holder.bus
        assert bus is not None
        try:
            for key in ban_keys(host, member):
                await bus.js.publish(
                    f"$KV.{BANS_BUCKET}.{key}", value, msg_ttl=max(1.0, self.duration_s)
                )
        except Exception as exc:
            log.warning("cannot store a ban: %s", exc)
            raise ChatError("unavailable", "the ban could not be stored; try again") from exc

    async def admit(self, host: str, member: str | None, role: str | None) -> None:
        """Raise `ChatError("banned")` if this host or member name is banned; staff (monitors
        and admins) are never barred by a host ban (a shared address must not lock them out)."""
        if role in ("monitor", "admin"):
            return
        left = await self.remaining(host, member)
        if left > 0:
            minutes = math.ceil(left / 60)
            raise ChatError("banned", f"you are banned from this chat for {minutes} more minute(s)")

    async def remaining(self, host: str, member: str | None) -> float:
        """Seconds left on the longest ban of this host or member name; 0 if none."""
        kv = await self._bucket()
        now = self._clock()
        longest = 0.0
        try:
            for key in ban_keys(host, member):
                try:
                    entry = await kv.get(key)
                except KeyNotFoundError:
                    continue
                if entry.value:
                    longest = max(longest, remaining_s(entry.value, now))
        except Exception as exc:
            log.warning("cannot check bans: %s", exc)
            raise ChatError("unavailable", "the chat cannot check bans right now") from exc
        return longest
