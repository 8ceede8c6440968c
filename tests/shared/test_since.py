"""`since` as integrators send it (shared/since.py): webhook-ids and RFC 3339 times, and where
in the stream a registration then starts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.ids import subscription_id, webhook_id
from shared.since import SEQ_MAX, Since, parse_since, rfc3339, start_point

ID = subscription_id("Lobby", "http://127.0.0.1:9000/events")


@given(st.integers(1, SEQ_MAX))
def test_a_webhook_id_names_its_sequence(seq: int) -> None:
    assert parse_since(webhook_id(ID, seq)) == Since(seq=seq)


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
    )
)
def test_an_rfc3339_time_round_trips(moment: datetime) -> None:
    for text in (moment.isoformat(), rfc3339(moment, digits=6)):
        assert parse_since(text) == Since(time=moment.astimezone(UTC))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-25T16:18:42Z", datetime(2026, 11, 25, 16, 18, 42, tzinfo=UTC)),
        ("2026-11-25t16:18:42z", datetime(2026, 11, 25, 16, 18, 42, tzinfo=UTC)),
        ("2026-11-25T17:18:42.5+01:00", datetime(2026, 11, 25, 16, 18, 42, 500000, tzinfo=UTC)),
        ("2026-11-25T16:18:42.123456789Z", datetime(2026, 11, 25, 16, 18, 42, 123456, tzinfo=UTC)),
    ],
)
def test_times(text: str, expected: datetime) -> None:
    assert parse_since(text) == Since(time=expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2026-11-25",  # a date is not a time
        "2026-11-25T16:18:42",  # no offset: which time?
        "2026-11-25 16:18:42Z",
        "2026-13-25T16:18:42Z",
        "2026-02-30T16:18:42Z",
        "2026-11-25T24:00:00Z",
        "2026-11-25T16:18:42+25:00",
        "0001-01-01T00:00:00+01:00",  # before the first representable instant
        f"{ID}_0",
        f"{ID}_{SEQ_MAX + 1}",
        f"{ID}_-1",
        f"{ID}_",
        f"{ID}",
        "sub_short_12",
        f"{ID.upper()}_12",
        f"{ID}_12 ",
        f"{ID}_\uff11\uff12",  # digits, but not ASCII ones
    ],
)
def test_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        parse_since(text)


@given(st.integers(0, 10**6), st.integers(1, 10**6), st.integers(0, 10**6))
def test_start_point_lies_within_what_is_held(after: int, first: int, last: int) -> None:
    start = start_point(after, first, last)
    assert start >= first - 1  # nothing older than the oldest held event is asked for
    assert start <= max(last, first - 1)  # never after the last stored: no event skipped
    if first - 1 <= after <= last:
        assert start == after


def test_rfc3339_digits() -> None:
    at = datetime(2026, 11, 25, 16, 18, 42, 123456, tzinfo=UTC)
    assert rfc3339(at) == "2026-11-25T16:18:42.123Z"
    assert rfc3339(at, digits=0) == "2026-11-25T16:18:42Z"
    assert rfc3339(at.timestamp(), digits=6) == "2026-11-25T16:18:42.123456Z"
