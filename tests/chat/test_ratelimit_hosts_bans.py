"""Flood control, the `host` of an event, and ban records: pure parts."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from services.chat.bans import ban_keys, remaining_s
from services.chat.hosts import TrustedProxies, client_host
from services.chat.ratelimit import TokenBucket


def test_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=5, burst=10, now=0.0)
    assert [bucket.allow(0.0) for _ in range(12)] == [True] * 10 + [False] * 2
    assert bucket.allow(0.1) is False  # half a token
    assert bucket.allow(0.2) is True  # one token after 0.2 s
    assert bucket.allow(0.2) is False
    assert sum(bucket.allow(100.0) for _ in range(20)) == 10  # refills to the burst, no more


def test_rate_zero_is_off() -> None:
    bucket = TokenBucket(rate=0, burst=1, now=0.0)
    assert all(bucket.allow(0.0) for _ in range(1000))


@given(
    rate=st.floats(0.1, 100),
    burst=st.integers(1, 50),
    gaps=st.lists(st.floats(0, 2), max_size=200),
)
def test_bucket_never_admits_more_than_burst_plus_rate_times_time(
    rate: float, burst: int, gaps: list[float]
) -> None:
    bucket = TokenBucket(rate, burst, now=0.0)
    now, admitted = 0.0, 0
    for gap in gaps:
        now += gap
        admitted += bucket.allow(now)
    assert admitted <= burst + rate * now + 1e-6


def test_client_host() -> None:
    trusted = TrustedProxies(["10.0.0.0/8", "::1"])
    assert client_host("10.1.2.3", "203.0.113.9, 10.1.2.3", trusted) == "203.0.113.9"
    assert client_host("::1", " 2001:db8::1 ", trusted) == "2001:db8::1"
    assert client_host("192.0.2.1", "203.0.113.9", trusted) == "192.0.2.1"  # untrusted peer
    assert client_host("10.1.2.3", None, trusted) == "10.1.2.3"
    assert client_host("10.1.2.3", "", trusted) == "10.1.2.3"
    assert client_host("10.1.2.3", "not-an-ip, 1.2.3.4", trusted) == "1.2.3.4"  # the rightmost
    assert client_host("10.1.2.3", "1.2.3.4", TrustedProxies([])) == "10.1.2.3"
    assert "unknown" not in trusted


def test_ban_keys_are_valid_and_distinct() -> None:
    keys = ban_keys("::1", "Ann")
    assert keys == ["host." + b"::1".hex(), "member." + b"ann".hex()]
    assert ban_keys("1.2.3.4", None) == ["host." + b"1.2.3.4".hex()]
    assert ban_keys("h", "ANN")[1] == ban_keys("h", "ann")[1]  # member names case-folded


@given(st.text(min_size=1), st.text(min_size=1))
def test_ban_keys_are_kv_safe(host: str, member: str) -> None:
    for key in ban_keys(host, member):
        assert all(c.isalnum() or c in "._" for c in key) and key.isascii()


def test_remaining() -> None:
    assert remaining_s(json.dumps({"until": 100.0}).encode(), 40.0) == 60.0
    assert remaining_s(json.dumps({"until": 100.0}).encode(), 140.0) == 0.0
    assert remaining_s(b"junk", 0.0) == 0.0
    assert remaining_s(b'{"until": "x"}', 0.0) == 0.0
