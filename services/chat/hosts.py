"""The `host` of an event (docs/callbacks.md): the peer's address, or the first `X-Forwarded-For`
address when the peer is a trusted proxy (an ingress on Kubernetes)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["TrustedProxies", "client_host"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """IP addresses and networks (`10.0.0.0/8`, `::1`) whose `X-Forwarded-For` we believe."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.networks: list[Network] = [ipaddress.ip_network(e, strict=False) for e in entries]

    def __contains__(self, host: object) -> bool:
        if not isinstance(host, str) or not self.networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.networks)


def client_host(peer: str, forwarded_for: str | None, trusted: TrustedProxies) -> str:
    """Who is chatting. A header that is absent or whose first entry is not an IP address
    leaves the peer's address."""
    if forwarded_for and peer in trusted:
        first = forwarded_for.split(",", 1)[0].strip()
        try:
            return str(ipaddress.ip_address(first))
        except ValueError:
            return peer
    return peer
