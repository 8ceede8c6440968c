"""Limits per client address and the origins whose browsers may open `/ws` (docs/websocket.md,
"Limits per client address"). Pure: the clock is passed in.

The address is the event's `host` (services/chat/hosts.py), so every connection behind one
address counts together, whatever it writes in its headers. The limits hold per chat process:
replicas behind a load balancer each count their own. Both are checked when a connection opens
or a room is created, never per chat message.
"""

from __future__ import annotations

from collections import deque
from urllib.parse import urlsplit

__all__ = ["HostLimits", "Origins"]

WINDOW_S = 60.0  # rooms are counted over any minute


class HostLimits:
    """`connections` open websockets per address (0: any number) and `rooms_per_minute` dynamic
    rooms created per address in any 60 s (0: any number)."""

    def __init__(self, connections: int, rooms_per_minute: int) -> None:
        self.connections_max = connections
        self.rooms_max = rooms_per_minute
        self.open_by_host: dict[str, int] = {}
        self._created: dict[str, deque[float]] = {}  # per address: when its recent rooms were
        self._swept = 0.0

    def open(self, host: str) -> bool:
        """Count one more connection of `host`; False (and nothing counted) if over the limit."""
        count = self.open_by_host.get(host, 0)
        if self.connections_max and count >= self.connections_max:
            return False
        self.open_by_host[host] = count + 1
        return True

    def close(self, host: str) -> None:
        """One connection of `host` (one `open` that said True) is gone."""
        count = self.open_by_host.get(host, 0) - 1
        if count > 0:
            self.open_by_host[host] = count
        else:
            self.open_by_host.pop(host, None)

    def create_room(self, host: str, now: float) -> bool:
        """Count a room `host` creates now; False (and nothing counted) if it has created
        `rooms_per_minute` in the last minute already."""
        if not self.rooms_max:
            return True
        if now - self._swept >= WINDOW_S:
            self._sweep(now)
        stamps = self._created.get(host)
        if stamps is None:
            stamps = self._created[host] = deque()
        while stamps and now - stamps[0] >= WINDOW_S:
            stamps.popleft()
        if len(stamps) >= self.rooms_max:
            return False
        stamps.append(now)
        return True

    def _sweep(self, now: float) -> None:
        """Forget addresses that created no room in the last minute (memory stays bounded by
        the addresses active in one minute)."""
        self._swept = now
        idle = [
            h for h, stamps in self._created.items() if not stamps or now - stamps[-1] >= WINDOW_S
        ]
        for host in idle:
            del self._created[host]


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _canonical_origin(origin: str) -> str:
    """`scheme://host[:port]` in lower case, without a default port or a trailing slash; an
    origin that does not parse is kept as written (lower case), so it matches only itself."""
    text = origin.strip().rstrip("/").lower()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return text
    if not parts.scheme or not parts.hostname:
        return text  # "null" (a sandboxed page, a file) and the like
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is None or port == _DEFAULT_PORTS.get(parts.scheme):
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


class Origins:
    """`CHAT_ALLOWED_ORIGINS`: comma-separated origins; empty allows any."""

    def __init__(self, setting: str) -> None:
        self.allowed = {_canonical_origin(o) for o in setting.split(",") if o.strip()}

    def allows(self, origins: list[str]) -> bool:
        """Whether a handshake with these `Origin` headers may open a websocket. No header (not
        a browser) is allowed; more than one is not."""
        if not self.allowed or not origins:
            return True
        return len(origins) == 1 and _canonical_origin(origins[0]) in self.allowed
