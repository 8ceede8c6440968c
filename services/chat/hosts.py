"""The `host` of an event (docs/callbacks.md): who is chatting, as one canonical address.

Without a proxy it is the peer's address. When the peer is a trusted proxy
(`CHAT_TRUSTED_PROXIES`: the ingress), `X-Forwarded-For` is read from the right: each proxy
appends the address it was reached from, so the rightmost entries were written by our own
proxies and only the entries left of them can be forged by the client. The host is the rightmost
entry that is not itself a trusted proxy (the leftmost entry when every one of them is).

Every address is written one way, so a ban or a per-address limit cannot be dodged by spelling:
IPv4-mapped IPv6 (`::ffff:6.6.6.6`) as IPv4, IPv6 compressed and without a zone (`%eth0`); a
port some proxies add (`6.6.6.6:4711`, `[2001:db8::1]:443`) is dropped.

An entry at or right of that point which is not an address (`unknown`, `_hidden`, a typo) means
the proxies cannot tell us who the client is. We then refuse the connection
(`ForwardedForError`, answered 400 in app.py) rather than fall back to the peer: the peer is the
ingress, and a ban or limit on the ingress's address would hit everyone behind it. Empty list
elements (`a, , b`) are skipped, as RFC 9110's list syntax allows.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

__all__ = ["ForwardedForError", "TrustedProxies", "canonical_address", "client_host"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_PORT = re.compile(r":[0-9]{1,5}")


class ForwardedForError(ValueError):
    """`X-Forwarded-For` from a trusted proxy that does not name the client."""


def canonical_address(text: str) -> str | None:
    """The address in `text`, written canonically, or None if `text` is not an IP address."""
    text = text.strip()
    if text.startswith("["):  # [IPv6] or [IPv6]:port
        end = text.find("]")
        if end < 0 or (text[end + 1 :] and not _PORT.fullmatch(text[end + 1 :])):
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # IPv4:port
        text, _, port = text.partition(":")
        if not _PORT.fullmatch(":" + port):
            return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Address(int(address)))  # without a zone
    return str(address)


class TrustedProxies:
    """IP addresses and networks (`10.0.0.0/8`, `::1`) whose `X-Forwarded-For` we believe."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.networks: list[Network] = [ipaddress.ip_network(e, strict=False) for e in entries]

    def __contains__(self, host: object) -> bool:
        if not isinstance(host, str) or not self.networks:
            return False
        canonical = canonical_address(host)
        if canonical is None:
            return False
        address = ipaddress.ip_address(canonical)
        return any(address in net for net in self.networks)


def client_host(peer: str, forwarded_for: str | None, trusted: TrustedProxies) -> str:
    """Who is chatting (see the module's doc). `forwarded_for` is every `X-Forwarded-For`
    header of the request, joined with commas; `ForwardedForError` when it names nobody."""
    host = canonical_address(peer) or peer
    if not forwarded_for or host not in trusted:
        return host
    for entry in reversed(forwarded_for.split(",")):
        if not entry.strip():
            continue
        address = canonical_address(entry)
        if address is None:
            raise ForwardedForError(
                f"X-Forwarded-For entry {entry.strip()[:40]!r} is not an IP address"
            )
        host = address
        if address not in trusted:
            break
    return host
