"""Where a registration starts when its partition is taken over (PartitionPositions.start_of),
no I/O: the highest of its start, its own position and the watermark that covers it."""

from __future__ import annotations

from services.dispatcher.positions import PartitionPositions
from shared.positions import Position, Watermark
from shared.subscriptions import Subscription


def sub(start: int | None) -> Subscription:
    return Subscription("sub_a", "Room", "http://127.0.0.1/cb", "whsec_AAAA", "2026", start)


def test_a_new_registration_starts_at_its_start() -> None:
    assert PartitionPositions().start_of(sub(7), 3) == (7, 0)


def test_its_own_position_wins_when_it_belongs_to_this_entry() -> None:
    state = PartitionPositions({"sub_a": (Position(20, 3), 41)})
    assert state.start_of(sub(7), 3) == (20, 41)
    assert state.start_of(sub(7), 4) == (7, 41)  # an ended registration's: not ours


def test_the_watermark_covers_only_the_entries_it_knew() -> None:
    state = PartitionPositions({"sub_a": (Position(20, 3), 41)}, Watermark(50, 10))
    assert state.start_of(sub(7), 3) == (50, 41)
    assert state.start_of(sub(7), 11) == (7, 41)  # made after the watermark was written


def test_a_registration_made_before_positions_starts_at_zero_or_its_position() -> None:
    assert PartitionPositions().start_of(sub(None), 3) == (0, 0)
