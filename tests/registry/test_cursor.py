"""List cursors: opaque, round-trip, bound to their listing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.registry.cursor import CursorError, decode_cursor, encode_cursor, newest_page


@given(st.integers(1, 2**63 - 1), st.one_of(st.none(), st.text(min_size=1, max_size=100)))
def test_round_trip(seq: int, room: str | None) -> None:
    cursor = encode_cursor(seq, room)
    assert cursor.isascii() and "=" not in cursor
    assert decode_cursor(cursor, room) == seq


def test_bound_to_its_listing() -> None:
    for made, used in (("a", "b"), ("a", None), (None, "a")):
        with pytest.raises(CursorError, match="another listing"):
            decode_cursor(encode_cursor(5, made), used)


@pytest.mark.parametrize("cursor", ["", "!!!", "MTI", "eDo1", "MDoxMjM0NTY3OA", "=" * 8, "é"])
def test_garbage_is_refused(cursor: str) -> None:
    with pytest.raises(CursorError):
        decode_cursor(cursor, None)


def test_attempt_cursors_are_bound_to_their_registration() -> None:
    cursor = encode_cursor(5, None, attempts_of="sub_a")
    assert decode_cursor(cursor, None, attempts_of="sub_a") == 5
    for room, of in ((None, "sub_b"), (None, None), ("sub_a", None)):
        with pytest.raises(CursorError, match="another listing"):
            decode_cursor(cursor, room, attempts_of=of)


@given(
    st.lists(st.integers(1, 500), unique=True).map(lambda s: sorted(s, reverse=True)),
    st.integers(1, 20),
)
def test_newest_pages_walk_everything_once_newest_first(seqs: list[int], limit: int) -> None:
    items = [(seq, f"a{seq}") for seq in seqs]
    walked: list[str] = []
    start: int | None = None
    while True:
        page, start = newest_page(items, start, limit)
        assert len(page) <= limit
        walked.extend(page)
        if start is None:
            break
        assert len(page) == limit
    assert walked == [item for _, item in items]
