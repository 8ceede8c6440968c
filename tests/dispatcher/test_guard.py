"""Which addresses callbacks may be dialled at (services/dispatcher/guard.py), no I/O, and the
guard in the dispatcher's transport against a real receiver on 127.0.0.1."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.dispatcher.guard import AddressGuard, parse_subnets
from services.dispatcher.http import CallbackClient, NoAnswer
from services.dispatcher.settings import DispatcherSettings
from services.dispatcher.transport import WireTransport

REFUSED = [
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "::1",
    "fe80::1%eth0",
    "fc00::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
]
ADMITTED = ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not AddressGuard().admits(address)


@pytest.mark.parametrize("address", ADMITTED)
def test_public_addresses_are_admitted(address: str) -> None:
    assert AddressGuard().admits(address)


def test_allowed_subnets_let_some_private_ones_through() -> None:
    guard = AddressGuard(parse_subnets("10.0.0.0/8, 127.0.0.1/32"))
    assert guard.admits("10.9.9.9")
    assert guard.admits("127.0.0.1")
    assert guard.admits("::ffff:10.0.0.1")
    assert not guard.admits("127.0.0.2")
    assert not guard.admits("192.168.0.1")


@given(st.ip_addresses(v=4))
def test_an_ipv4_address_and_its_mapped_form_are_judged_alike(ip: object) -> None:
    guard = AddressGuard()
    assert guard.admits(str(ip)) == guard.admits(f"::ffff:{ip}")


def test_settings_refuse_a_malformed_subnet_and_the_guard_without_our_transport() -> None:
    with pytest.raises(ValueError):
        DispatcherSettings(dispatch_allowed_subnets="10.0.0.0/33")
    with pytest.raises(ValueError):
        DispatcherSettings(dispatch_block_private=True, dispatch_http_transport="httpx")


async def test_the_transport_dials_no_refused_address(receiver_factory: object) -> None:
    receiver = receiver_factory()  # type: ignore[operator]
    for host in ("127.0.0.1", "localhost"):
        url = receiver.url.replace("127.0.0.1", host)
        async with CallbackClient(WireTransport(AddressGuard()), timeout_s=2) as client:
            with pytest.raises(NoAnswer, match="no address callbacks may reach"):
                await client.post(url, b"<x/>", {})
        allowed = AddressGuard(parse_subnets("127.0.0.0/8 ::1/128"))
        async with CallbackClient(WireTransport(allowed), timeout_s=2) as client:
            assert await client.post(url, b"<x/>", {}) == 200
    assert len(receiver.received) == 2
