"""bench/chaos/report.py: what fails a chaos run, its table, and the faults shown beside a loss."""

from __future__ import annotations

import dataclasses

from bench.chaos.check import RegistrationResult, StreamEvent, ViewResult
from bench.chaos.inject import Record
from bench.chaos.report import Outcome, details, failures, table


def outcome(
    results: list[RegistrationResult], faults: int = 3, views: ViewResult | None = None
) -> Outcome:
    stream = [StreamEvent(seq, "r", "{}", f"m{seq}", 1000.0 + seq) for seq in range(1, 6)]
    records = [
        Record("sigkill", "chat-0", 1000.0 + n, 1001.0 + n, "exit -9") for n in range(faults)
    ]
    return Outcome(
        stream, results, views or ViewResult(3, 9), [], 2, ["m4"], 0, records, [], 3, {}, [], [], {}
    )


def clean() -> RegistrationResult:
    return RegistrationResult("sub_a", "r", ended=False, expected=5, posts=6, unique=5)


def test_a_clean_run_with_enough_faults_passes_and_its_table_says_so() -> None:
    o = dataclasses.replace(outcome([clean()]), refused_stored=[])
    assert failures(o) == []
    text = table(o)
    assert "| lost " in text and "| faults injected " in text and ">= 3" in text
    assert "5/5 (6 POSTs)" in text and "2 / 0" in text


def test_each_broken_rule_and_too_few_faults_fail_the_run() -> None:
    lost = clean()
    lost.lost = [3, 4]
    lost.reordered = [(2, 5)]
    ended = RegistrationResult("sub_b", "r", ended=True)
    views = ViewResult(1, 2, missing=[("c", "r", "x")], out_of_order=[("c", "r", "m1", 1, 2)])
    o = dataclasses.replace(
        outcome([lost, ended], faults=2, views=views), left=[("r", "u")], violations=["v"]
    )
    assert failures(o) == [
        "events lost: 2",
        "events reordered: 1",
        "registrations ended: 1",
        "users the stream leaves in a room: 1",
        "NATS permission violations: 1",
        "client frames not in the stream: 1",
        "client frames out of the stream's order: 1",
        "messages answered unavailable yet stored: 1",
        "faults injected: 2, fewer than 3",
    ]


def test_a_lost_range_is_shown_with_the_faults_around_it() -> None:
    lost = clean()
    lost.lost = [3, 4]
    lines = details(outcome([lost]))
    assert lines[0] == "sub_a (room r): lost 3..4, stored at 1003.000"
    assert lines[1:4] == [
        f"       {-3 + n:+.1f} s ..    {-2 + n:+.1f} s sigkill chat-0 (exit -9)" for n in range(3)
    ]
    assert any("'m4' (room r, seq 4) was answered unavailable" in line for line in lines)


def test_users_left_in_a_room_by_a_sigkilled_chat_are_counted_the_others_shown() -> None:
    o = dataclasses.replace(
        outcome([clean()]),
        left=[("r", "u1"), ("r", "u2")],
        sessions={
            "u1": ("chat-0", 1000.5, "ConnectionClosedError"),
            "u2": ("chat-1", 1000.5, "left"),
        },
    )
    lines = details(dataclasses.replace(o, refused_stored=[]))
    assert lines[0].startswith("1 users left in a room by the stream were on a chat replica")
    assert lines[1] == "u2 is left in r: on chat-1, session ended left at 1000.500"
