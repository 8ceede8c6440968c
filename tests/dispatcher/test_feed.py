"""The feed's state machine (services/dispatcher/feed.py), no I/O: however the tail's offers and
the feed's own reads interleave, every event of its room is taken once, in stream order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.dispatcher.feed import Feed, HeldEvent
from shared.subscriptions import Subscription

SUB = Subscription("sub_x", "Room", "http://127.0.0.1/cb", "whsec_AAAA", "2026-01-01T00:00:00Z", 0)


def event(seq: int) -> HeldEvent:
    return HeldEvent(seq, 0.0, f"<e>{seq}</e>".encode())


def deliver_all(feed: Feed) -> list[int]:
    got = []
    while (head := feed.head()) is not None:
        feed.answered(head)
        got.append(head.seq)
    return got


def test_a_live_feed_takes_each_offer_once_in_order() -> None:
    feed = Feed(SUB, 1, delivered=5, read_ahead=10, live=True)
    assert not feed.offer(event(5))  # at or before where it stands: not again
    assert feed.offer(event(7))
    assert not feed.offer(event(7))
    assert feed.offer(event(9))
    assert deliver_all(feed) == [7, 9]
    assert feed.delivered == 9
    assert not feed.idle  # answered but not yet stored
    feed.flushed = feed.delivered
    assert feed.idle
    assert feed.covered(40) == 40


def test_a_full_feed_leaves_the_tail_and_reads_what_it_missed() -> None:
    feed = Feed(SUB, 1, delivered=0, read_ahead=2, live=True)
    assert feed.offer(event(1)) and feed.offer(event(2))
    assert not feed.offer(event(3))  # full: catches up on its own
    assert feed.catching_up and feed.wanted() == 0
    assert not feed.offer(event(4))
    assert feed.covered(10) == 0  # nothing stored yet
    assert deliver_all(feed) == [1, 2]
    assert feed.wanted() == 2
    feed.fill([event(3), event(4)], exhausted=True)  # read after 2: found 3 and 4, the end
    assert not feed.catching_up
    assert deliver_all(feed) == [3, 4]


def test_a_read_that_ended_before_the_tail_saw_more_reads_again() -> None:
    feed = Feed(SUB, 1, delivered=0, read_ahead=10, live=False)
    assert not feed.offer(event(6))  # the tail went on while the read was under way
    feed.fill([event(2)], exhausted=True)  # the read saw only 2: 6 came later
    assert feed.catching_up  # so it reads once more rather than miss 6
    feed.fill([event(2), event(6)], exhausted=True)
    assert not feed.catching_up
    assert deliver_all(feed) == [2, 6]


def test_a_restart_forgets_what_is_in_hand() -> None:
    feed = Feed(SUB, 1, delivered=0, read_ahead=10, live=True)
    feed.offer(event(1))
    head = feed.head()
    assert head is not None
    feed.restart(8)  # another replica moved its position to 8
    feed.answered(head)  # the POST that was in flight ends: ignored
    assert (feed.delivered, feed.last_held, feed.catching_up) == (8, 8, True)
    assert feed.covered(20) == 8


@settings(max_examples=500, deadline=None)
@given(
    room=st.lists(st.booleans(), min_size=1, max_size=40),
    steps=st.lists(st.sampled_from(["store", "tail", "read", "filled", "post"]), max_size=300),
    read_ahead=st.integers(1, 5),
    start=st.integers(0, 10),
    live=st.booleans(),
)
def test_any_interleaving_takes_every_event_once_in_order(
    room: list[bool], steps: list[str], read_ahead: int, start: int, live: bool
) -> None:
    """A stream of sequences 1..n, some of them the feed's room (`room[i]`), stored one at a
    time. The tail offers each stored event in order; a read starts (it sees the room's events
    stored by then after `last_held`, as many as wanted, and whether that was the end) and its
    answer arrives later, after any number of other steps."""
    mine = [seq for seq, ours in enumerate(room, 1) if ours]
    stored = 0  # highest sequence stored so far
    tail = start  # highest sequence the tail has offered
    feed = Feed(SUB, 1, delivered=start, read_ahead=read_ahead, live=live)
    reading: tuple[list[HeldEvent], bool] | None = None
    got: list[int] = []

    def step(name: str) -> None:
        nonlocal stored, tail, reading
        if name == "store" and stored < len(room):
            stored += 1
        elif name == "tail" and tail < stored:
            tail += 1
            if room[tail - 1]:
                feed.offer(event(tail))
        elif name == "read" and reading is None and feed.wanted() and not feed.held:
            after = [s for s in mine if feed.last_held < s <= stored]
            batch = after[: feed.wanted()]
            reading = ([event(s) for s in batch], len(batch) == len(after))
        elif name == "filled" and reading is not None:
            feed.fill(*reading)
            reading = None
        elif name == "post" and (head := feed.head()) is not None:
            feed.answered(head)
            got.append(head.seq)

    for name in steps:
        step(name)
    for _ in range(4 * len(room) + 4):  # then let everything settle
        for name in ("store", "tail", "filled", "read", "filled", "post"):
            step(name)
    assert got == [s for s in mine if s > start]
    assert not feed.catching_up and feed.head() is None
