"""Limits per client address and allowed origins (services/chat/limits.py), and the chat's
refusal of one room too many."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.chat.limits import HostLimits, Origins
from tests.chat.memory import Client, make_server


def test_connections_per_address() -> None:
    limits = HostLimits(connections=2, rooms_per_minute=0)
    assert [limits.open("6.6.6.6") for _ in range(3)] == [True, True, False]
    assert limits.open("6.6.6.7")  # another address has its own count
    limits.close("6.6.6.6")
    assert limits.open("6.6.6.6") and not limits.open("6.6.6.6")
    for _ in range(2):
        limits.close("6.6.6.6")
    limits.close("6.6.6.7")
    assert limits.open_by_host == {}  # nothing kept for addresses with no connection


def test_zero_turns_either_limit_off() -> None:
    limits = HostLimits(connections=0, rooms_per_minute=0)
    assert all(limits.open("h") for _ in range(1000))
    assert all(limits.create_room("h", 0.0) for _ in range(1000))


def test_rooms_per_minute_per_address() -> None:
    limits = HostLimits(connections=0, rooms_per_minute=3)
    assert [limits.create_room("h", t) for t in (0.0, 1.0, 2.0, 3.0)] == [True] * 3 + [False]
    assert limits.create_room("other", 3.0)
    assert not limits.create_room("h", 59.9)
    assert limits.create_room("h", 60.0)  # the first one is a minute old
    assert not limits.create_room("h", 60.5)
    limits.create_room("late", 200.0)  # a sweep forgets the addresses idle for a minute
    assert set(limits._created) == {"late"}


@given(
    limit=st.integers(1, 10),
    gaps=st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=100),
)
def test_never_more_rooms_than_the_limit_in_any_minute(limit: int, gaps: list[float]) -> None:
    limits = HostLimits(connections=0, rooms_per_minute=limit)
    now, created = 0.0, []
    for gap in gaps:
        now += gap
        if limits.create_room("h", now):
            created.append(now)
    for i, start in enumerate(created):
        assert len([t for t in created[i:] if t - start < 60.0]) <= limit


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://chat.example.com", True),
        ("HTTPS://Chat.Example.com/", True),
        ("https://chat.example.com:443", True),
        ("http://localhost:8000", True),
        ("http://localhost", False),
        ("https://chat.example.com.evil.test", False),
        ("https://evil.test", False),
        ("http://chat.example.com", False),
        ("null", False),
        ("https://chat.example.com:99999", False),
        ("", False),
    ],
)
def test_origins(origin: str, allowed: bool) -> None:
    origins = Origins(" https://chat.example.com/ , http://LOCALHOST:8000,")
    assert origins.allows([origin]) is allowed
    assert origins.allows([])  # no Origin: not a browser
    assert Origins("").allows([origin])  # empty setting: any origin


def test_two_origin_headers_are_refused() -> None:
    origins = Origins("https://chat.example.com")
    assert not origins.allows(["https://chat.example.com", "https://evil.test"])


async def test_one_room_too_many_is_rate_limited_and_entering_rooms_that_exist_is_not() -> None:
    server, publisher, clock = make_server(chat_host_rooms_per_minute=2)
    c, neighbour = Client(server, "6.6.6.6"), Client(server, "6.6.6.6")
    await c(op="enter", room="R1", user="u")
    await c(op="enter", room="R2", user="u")
    await neighbour(op="enter", room="R3", user="v", id=3)  # the same address
    [refused] = neighbour.frames()
    assert refused["code"] == "rate_limited" and refused["id"] == 3
    assert "2 a minute" in refused["message"]
    assert len(publisher.stored) == 4  # two creates, two enters
    await neighbour(op="enter", room="R1", user="v")  # R1 exists
    assert neighbour.frames()[0]["op"] == "entered"
    other = Client(server, "6.6.6.7")
    await other(op="enter", room="R3", user="w")
    assert other.frames()[0]["op"] == "entered"
    clock.now = 60.0
    await neighbour(op="enter", room="R4", user="v")
    assert neighbour.frames()[0]["op"] == "entered"
