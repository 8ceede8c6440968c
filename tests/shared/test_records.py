"""What the ended-registrations bucket and the attempts stream hold (shared/ended.py,
shared/attempts.py): each record reads back as it was written, and a foreign one is refused."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.attempts import Attempt, attempts_subject
from shared.ended import Ended

texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


@given(
    texts,
    texts,
    st.sampled_from(["status", "no_answer", "deleted"]),
    st.one_of(st.none(), st.integers(100, 599)),
    st.one_of(st.none(), texts),
)
def test_an_ended_record_round_trips(
    room: str, url: str, reason: str, status: int | None, last: str | None
) -> None:
    ended = Ended("sub_x", room, url, "2026-11-25T17:02:11Z", reason, status, last)  # type: ignore[arg-type]
    assert Ended.from_json(ended.to_json()) == ended


def test_an_ended_record_with_an_unknown_reason_is_refused() -> None:
    data = Ended("sub_x", "r", "u", "t", "deleted", None, None).to_json()
    with pytest.raises(ValueError, match="not a reason"):
        Ended.from_json(data.replace(b"deleted", b"bored"))


@given(
    st.floats(0, 4e9),
    texts,
    st.one_of(st.none(), st.integers(100, 599)),
    st.one_of(st.none(), texts),
    st.floats(0, 1e6),
)
def test_an_attempt_round_trips(
    at: float, webhook_id: str, status: int | None, error: str | None, ms: float
) -> None:
    attempt = Attempt(at, webhook_id, status, error, ms)
    assert Attempt.from_json(attempt.to_json()) == attempt
    assert len(json.loads(attempt.to_json())) == 5  # a compact array, not an object


def test_one_subject_per_registration() -> None:
    assert attempts_subject("sub_abc") == "volano.attempts.sub_abc"
    assert attempts_subject("*") == "volano.attempts.*"
