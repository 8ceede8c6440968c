"""LoopWatch (services/dispatcher/stall.py): a stall of the process is told from a callback's
silence, and the retry clock stands still while the process did."""

from __future__ import annotations

from services.dispatcher.stall import LoopWatch


def test_ticks_on_time_are_no_stall() -> None:
    watch = LoopWatch(tick_s=0.25, stall_s=1.0)
    watch.last_tick = 100.0
    for n in range(1, 9):
        watch.tick(100.0 + n * 0.3)
    assert watch.stalled_total == 0
    assert not watch.stalled_since(100.0, now=102.5)
    assert watch.running(110.0) == 110.0


def test_a_late_tick_is_a_stall_and_the_clock_skips_it() -> None:
    watch = LoopWatch(tick_s=0.25, stall_s=1.0)
    watch.last_tick = 100.0
    watch.tick(120.25)  # stopped for 20 s
    assert watch.stalled_total == 20.0
    assert watch.stalled_since(110.0, now=120.3)
    assert not watch.stalled_since(120.3, now=121.0)
    assert watch.running(121.0) == 101.0


def test_a_stall_not_yet_ticked_counts_already() -> None:
    """The POST that timed out may run before the watch's own late tick does."""
    watch = LoopWatch(tick_s=0.25, stall_s=1.0)
    watch.last_tick = 100.0
    assert watch.stalled_since(99.0, now=121.0)
    assert not watch.stalled_since(99.0, now=100.5)
