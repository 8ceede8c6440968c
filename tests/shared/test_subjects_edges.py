"""The edges of shared/subjects.py that the property tests do not reach: the empty room, and the
filter that matches one room's events and no other's."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.subjects import event_subject, room_subjects, room_token


def test_an_empty_room_has_no_token() -> None:
    with pytest.raises(ValueError):
        room_token("")


def _matches(pattern: str, subject: str) -> bool:
    """NATS subject matching, for `*` and `>` (enough for these filters)."""
    want, got = pattern.split("."), subject.split(".")
    for i, part in enumerate(want):
        if part == ">":
            return len(got) > i
        if i >= len(got) or (part != "*" and part != got[i]):
            return False
    return len(want) == len(got)


@given(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30))
def test_a_rooms_filter_matches_its_events_and_no_other_rooms(a: str, b: str) -> None:
    assert _matches(room_subjects(a), event_subject(a, "chat"))
    assert _matches(room_subjects(a), event_subject(a, "delete"))
    if a != b:
        assert not _matches(room_subjects(a), event_subject(b, "chat"))
