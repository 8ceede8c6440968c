"""shared/positions.py: partition keys and the stored forms of positions and watermarks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shared.positions import (
    PARTITIONS,
    Position,
    Watermark,
    partition_of,
    partition_prefix,
    position_key,
    watermark_key,
)

rooms = st.text(st.characters(codec=None), min_size=1, max_size=50)
seqs = st.integers(min_value=0, max_value=2**63 - 1)


@given(rooms)
def test_a_rooms_position_keys_are_in_its_partition(room: str) -> None:
    partition = partition_of(room)
    assert 0 <= partition < PARTITIONS
    assert position_key(room, "sub_x") == f"{partition_prefix(partition)}.sub_x"
    assert partition_of(room) == partition  # the same on every replica and every run


def test_the_watermark_key_is_beside_the_positions_and_never_one_of_them() -> None:
    for partition in range(PARTITIONS):
        assert watermark_key(partition) == f"p{partition}.mark"
    assert len({watermark_key(p) for p in range(PARTITIONS)}) == PARTITIONS
    assert not any(position_key("Lobby", "sub_x") == watermark_key(p) for p in range(PARTITIONS))


@given(seqs, seqs)
def test_positions_and_watermarks_round_trip(seq: int, revision: int) -> None:
    assert Position.from_json(Position(seq, revision).to_json()) == Position(seq, revision)
    assert Watermark.from_json(Watermark(seq, revision).to_json()) == Watermark(seq, revision)


def test_the_stored_form_is_the_documented_json() -> None:
    assert Position.from_json(b'{"seq": "7", "entry": 3}') == Position(7, 3)
    assert Watermark.from_json(b'{"seq": 9, "entries": "2"}') == Watermark(9, 2)
    assert Position(7, 3).to_json() == b'{"seq": 7, "entry": 3}'
    assert Watermark(9, 2).to_json() == b'{"seq": 9, "entries": 2}'
