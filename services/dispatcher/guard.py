"""Which addresses a callback may be dialled at, with no I/O (`DISPATCH_BLOCK_PRIVATE`).

A whitelisted host name can still resolve to an address inside the cluster (DNS rebinding, or
a name an integrator controls): with the guard on, the dispatcher dials only public addresses,
checked on the address it actually connects to, and those in `DISPATCH_ALLOWED_SUBNETS`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["AddressGuard", "parse_subnets"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_subnets(text: str) -> list[Network]:
    """CIDRs separated by commas or white space; raises ValueError for anything else."""
    return [ipaddress.ip_network(part, strict=False) for part in text.replace(",", " ").split()]


class AddressGuard:
    def __init__(self, allowed: Iterable[Network] = ()) -> None:
        self.allowed = list(allowed)

    def admits(self, address: str) -> bool:
        """Public addresses, and any in an allowed subnet. IPv4-mapped IPv6 is judged as the
        IPv4 address it carries."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.allowed):
            return True
        return ip.is_global and not ip.is_multicast
