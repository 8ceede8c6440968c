"""Who is chatting behind trusted proxies: the rightmost `X-Forwarded-For` address that is not a
trusted proxy, written one way; garbage where it counts is refused (services/chat/hosts.py)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.chat.hosts import ForwardedForError, TrustedProxies, canonical_address, client_host

TRUSTED = TrustedProxies(["10.0.0.0/8", "::1", "fd00::/8"])
INGRESS = "10.1.2.3"


@pytest.mark.parametrize(
    ("forwarded_for", "host"),
    [
        ("6.6.6.7, 6.6.6.6", "6.6.6.6"),  # the client wrote 6.6.6.7; the ingress appended 6.6.6.6
        ("6.6.6.7,6.6.6.6", "6.6.6.6"),
        ("6.6.6.6, 10.0.0.9, 10.0.0.8", "6.6.6.6"),  # through two more proxies of ours
        ("10.0.0.9, 10.0.0.8", "10.0.0.9"),  # every hop trusted: the leftmost is the client
        ("::ffff:6.6.6.6", "6.6.6.6"),
        ("6.6.6.7, ::FFFF:6.6.6.6", "6.6.6.6"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("6.6.6.6:4711", "6.6.6.6"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[::ffff:6.6.6.6]", "6.6.6.6"),
        ("unknown, 6.6.6.6", "6.6.6.6"),  # garbage left of the client is the client's business
        ("junk, 6.6.6.6, 10.0.0.9", "6.6.6.6"),
        ("6.6.6.6, , ", "6.6.6.6"),  # empty list elements are skipped
        (" , ", INGRESS),  # nothing but empty elements: no proxy spoke
    ],
)
def test_the_rightmost_untrusted_address(forwarded_for: str, host: str) -> None:
    assert client_host(INGRESS, forwarded_for, TRUSTED) == host


@pytest.mark.parametrize(
    "forwarded_for",
    [
        "unknown",
        "6.6.6.6, unknown",
        "unknown, 10.0.0.9",  # the trusted proxy's own client is unnamed
        "_hidden",
        "6.6.6.6, 06.6.6.6",
        "6.6.6",
        "6.6.6.6:",
        "6.6.6.6:port",
        "[2001:db8::1",
        "[2001:db8::1]x",
        "2001:db8::1:80:",
        "1.2.3.4/8",
        "\ud800",
    ],
)
def test_garbage_that_would_name_the_client_is_refused(forwarded_for: str) -> None:
    with pytest.raises(ForwardedForError):
        client_host(INGRESS, forwarded_for, TRUSTED)


def test_an_untrusted_peer_is_the_host_whatever_it_sends() -> None:
    assert client_host("192.0.2.1", "6.6.6.6", TRUSTED) == "192.0.2.1"
    assert client_host("192.0.2.1", "unknown", TRUSTED) == "192.0.2.1"
    assert client_host("::ffff:192.0.2.1", None, TRUSTED) == "192.0.2.1"
    assert client_host("::ffff:10.1.2.3", "6.6.6.6", TRUSTED) == "6.6.6.6"  # a mapped proxy
    assert client_host("1.2.3.4", "6.6.6.6", TrustedProxies([])) == "1.2.3.4"


ipv4 = st.ip_addresses(v=4)
public = ipv4.filter(lambda a: a not in ipaddress.ip_network("10.0.0.0/8"))
hops = st.lists(st.ip_addresses(network="10.0.0.0/8"), max_size=3)
forged = st.lists(st.text(st.characters(exclude_characters=","), max_size=20), max_size=4)


@given(forged=forged, client=public, hops=hops, mapped=st.booleans())
def test_whatever_the_client_forges_it_is_found_by_its_real_address(
    forged: list[str],
    client: ipaddress.IPv4Address,
    hops: list[ipaddress.IPv4Address],
    mapped: bool,
) -> None:
    written = f"::ffff:{client}" if mapped else str(client)
    header = ", ".join([*forged, written, *map(str, hops)])
    assert client_host(INGRESS, header, TRUSTED) == str(client)


@given(st.ip_addresses())
def test_canonical_address_is_one_spelling(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    canonical = canonical_address(str(address))
    assert canonical is not None and canonical_address(canonical) == canonical
    if address.version == 6:
        assert canonical_address(f"[{address}]:1") == canonical
    else:
        assert canonical_address(f"::ffff:{address}") == canonical == str(address)
        assert canonical_address(f"{address}:8080") == canonical
