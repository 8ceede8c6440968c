"""bench/chaos/check.py: the chaos run's lost, reordered, duplicate and view computations."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bench.chaos.check import (
    Delivery,
    Registration,
    StreamEvent,
    View,
    check_registration,
    check_views,
    membership,
    refused_but_stored,
    stored_twice,
)


def chat(seq: int, room: str = "r", message: str | None = None) -> StreamEvent:
    text = message if message is not None else f"m{seq}"
    data = f'{{"kind":"chat","room":"{room}","message":"{text}"}}'
    return StreamEvent(seq, room, data, text, 1000.0 + seq)


def post(event: StreamEvent) -> Delivery:
    return Delivery(event.seq, event.data)


STREAM = [chat(1), chat(2, "other"), chat(3), chat(4), chat(5, "other"), chat(6)]
R = {e.seq: e for e in STREAM}


def test_every_event_after_the_start_delivered_once_in_order_is_clean() -> None:
    result = check_registration(
        STREAM, Registration("sub_a", "r", 1), map(post, [R[3], R[4], R[6]])
    )
    assert (result.expected, result.posts, result.unique) == (3, 3, 3)
    assert result.lost == result.reordered == result.mismatched == []
    assert result.duplicates == 0 and not result.ended


def test_an_event_never_posted_is_lost_and_one_before_the_start_is_not_expected() -> None:
    result = check_registration(STREAM, Registration("sub_a", "r", 0), map(post, [R[1], R[6]]))
    assert result.lost == [3, 4]
    assert result.expected == 4


def test_repeats_are_duplicates_not_reorders() -> None:
    posts = map(post, [R[3], R[4], R[3], R[4], R[6], R[6]])
    result = check_registration(STREAM, Registration("sub_a", "r", 1), posts)
    assert result.duplicates == 3
    assert result.reordered == [] and result.lost == []


def test_a_first_post_after_a_later_event_is_reordered() -> None:
    result = check_registration(
        STREAM, Registration("sub_a", "r", 0), map(post, [R[1], R[4], R[3], R[6]])
    )
    assert result.reordered == [(3, 4)]
    assert result.lost == []


def test_a_post_that_is_not_the_streams_event_or_not_the_rooms_is_mismatched() -> None:
    wrong = Delivery(3, '{"room":"r","message":"forged"}')
    posts = [wrong, post(R[5]), post(R[1])]
    result = check_registration(STREAM, Registration("sub_a", "r", 1), posts)
    assert result.mismatched == [3, 5, 1]


def test_an_ended_registration_expects_nothing() -> None:
    result = check_registration(STREAM, Registration("sub_a", "r", None), [post(R[3])])
    assert result.ended and result.expected == 0
    assert result.lost == result.mismatched == []


@given(st.lists(st.integers(1, 30), max_size=60), st.integers(0, 30))
def test_the_counts_add_up_whatever_arrives(arrivals: list[int], start: int) -> None:
    stream = [chat(seq) for seq in range(1, 31)]
    result = check_registration(
        stream, Registration("sub_a", "r", start), [post(stream[s - 1]) for s in arrivals]
    )
    firsts = list(dict.fromkeys(arrivals))
    assert result.unique == len(firsts) and result.posts == len(arrivals)
    assert set(result.lost) == set(range(start + 1, 31)) - set(arrivals)
    assert (result.reordered == []) == (firsts == sorted(firsts))
    assert result.mismatched == [s for s in firsts if s <= start]


def seen(client: str, room: str, *messages: str, entered: int = 0) -> View:
    """A session that entered at `entered` and got these chat frames, numbered as stored."""
    frames = [(int(m[1:]) if m[1:].isdigit() else 99, m) for m in messages]
    return View(client, room, ((entered, None), *frames))


def test_views_that_are_subsequences_of_the_stream_pass() -> None:
    views = [
        seen("c1", "r", "m3", "m4", entered=1),
        seen("c2", "other", "m2", "m5", entered=1),
        seen("c3", "r"),
        View("c4", "r", ()),
    ]
    result = check_views(STREAM, views)
    assert (result.sessions, result.frames) == (4, 4)
    assert result.missing == result.out_of_order == result.misnumbered == result.missed == []


def test_a_frame_the_stream_lacks_or_holds_in_another_room_is_missing() -> None:
    result = check_views(STREAM, [seen("c1", "r", "m1", "ghost", "m2")])
    assert result.missing == [("c1", "r", "ghost"), ("c1", "r", "m2")]


def test_a_frame_before_one_the_stream_stored_earlier_is_out_of_order() -> None:
    result = check_views(STREAM, [seen("c1", "r", "m1", "m4", "m3", "m6")])
    assert result.out_of_order == [("c1", "r", "m3", 3, 4)]


def test_a_chat_frame_numbered_otherwise_than_its_event_is_misnumbered() -> None:
    result = check_views(STREAM, [View("c1", "r", ((0, None), (3, "m3"), (5, "m4")))])
    assert result.misnumbered == [("c1", "r", "m4", 5, 4)]


def test_an_event_of_the_room_between_entered_and_the_last_frame_not_sent_is_missed() -> None:
    stream = [*STREAM, chat(7, "r"), member(8, "enter", "zed"), member(9, "exit", "zed")]
    result = check_views(stream, [View("c1", "r", ((1, None), (4, "m4"), (8, None)))])
    assert result.missed == [("c1", "r", 3), ("c1", "r", 6), ("c1", "r", 7)]  # not 9: after


def test_messages_stored_twice_and_refusals_that_were_stored() -> None:
    stream = [*STREAM, chat(7, "r", "m3")]
    assert stored_twice(stream) == ["m3"]
    assert stored_twice(STREAM) == []
    assert refused_but_stored(STREAM, ["m4", "never", "m1"]) == ["m1", "m4"]


def member(seq: int, kind: str, user: str, kick: str = "") -> StreamEvent:
    fields = {"enter": f'"user":"{user}"', "exit": f'"user":"{user}"'}
    body = fields.get(kind, f'"from":"mod","to":"{user}","type":"{kick}"')
    return StreamEvent(seq, "r", f'{{"kind":"{kind}","room":"r",{body}}}', None, 0.0)


def test_membership_finds_who_never_left_and_exits_of_strangers() -> None:
    stream = [
        member(1, "enter", "ann"),
        member(2, "enter", "bob"),
        member(3, "enter", "cy"),
        member(4, "exit", "ann"),
        member(5, "kick", "bob", "disconnect"),  # its exit follows
        member(6, "exit", "bob"),
        member(7, "exit", "dan"),
        member(8, "kick", "eve", "remove"),
        chat(9),
    ]
    assert membership(stream) == ([("r", "cy")], [("r", "dan", 7), ("r", "eve", 8)])
    assert membership([*stream, member(10, "kick", "cy", "remove")])[0] == []
