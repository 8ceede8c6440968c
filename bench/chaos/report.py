"""The chaos run's verdict: one table of what was checked (with what each figure must be), the
failures that make the run exit non-zero, and for each lost or reordered event where it was and
which faults came shortly before it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bench.chaos.check import RegistrationResult, StreamEvent, ViewResult
from bench.chaos.inject import Record

__all__ = ["Outcome", "details", "failures", "table"]

BEFORE_S = 20.0  # faults this long before an event are listed beside it
AFTER_S = 5.0
SHOWN = 10  # events answered unavailable yet stored: the first this many are shown


@dataclass
class Outcome:
    stream: list[StreamEvent]
    results: list[RegistrationResult]
    views: ViewResult
    twice: list[str]
    refused: int
    refused_stored: list[str]
    unreadable: int
    faults: list[Record]
    crashes: list[Record]
    min_faults: int
    ended_why: dict[str, str]  # registration id: what the registry says of it
    left: list[tuple[str, str]]  # (room, user) still in a room when the stream ends
    strays: list[tuple[str, str, int]]  # (room, user, seq): an exit of someone not there
    sessions: dict[str, tuple[str, float, str]]  # user: (chat replica, when it ended, how)
    violations: list[str] = field(default_factory=list)  # NATS permission violations logged

    def total(self, name: str) -> int:
        return sum(len(getattr(r, name)) for r in self.results)


def failures(o: Outcome) -> list[str]:
    """Each broken rule, in words; empty if the run passed."""
    checks = [
        ("events lost", o.total("lost")),
        ("events reordered", o.total("reordered")),
        ("POSTs not matching the stream", o.total("mismatched")),
        ("unreadable POSTs", o.unreadable),
        ("registrations ended", sum(r.ended for r in o.results)),
        ("users the stream leaves in a room", len(o.left)),
        ("NATS permission violations", len(o.violations)),
        ("client frames not in the stream", len(o.views.missing)),
        ("client frames out of the stream's order", len(o.views.out_of_order)),
        ("client frames with another seq than their event's", len(o.views.misnumbered)),
        ("room events a client session missed", len(o.views.missed)),
        ("messages answered unavailable yet stored", len(o.refused_stored)),
    ]
    found = [f"{what}: {count}" for what, count in checks if count]
    if len(o.faults) < o.min_faults:
        found.append(f"faults injected: {len(o.faults)}, fewer than {o.min_faults}")
    return found


def _rows(o: Outcome) -> list[tuple[str, str, str]]:
    rooms = Counter(e.room for e in o.stream)
    rows = [("events accepted (in the stream)", str(len(o.stream)), "")]
    rows += [(f"  room {room}", str(n), "") for room, n in sorted(rooms.items())]
    for r in o.results:
        value = "ended" if r.ended else f"{r.unique}/{r.expected} ({r.posts} POSTs)"
        rows.append((f"  delivered {r.id} ({r.room})", value, ""))
    rows += [
        ("lost", str(o.total("lost")), "0"),
        ("reordered after de-dup by webhook-id", str(o.total("reordered")), "0"),
        ("duplicates", str(sum(r.duplicates for r in o.results)), ""),
        ("POSTs not matching the stream", str(o.total("mismatched")), "0"),
        ("unreadable POSTs", str(o.unreadable), "0"),
        ("registrations ended", str(sum(r.ended for r in o.results)), "0"),
        ("faults injected", str(len(o.faults)), f">= {o.min_faults}"),
    ]
    kinds = Counter(f.kind for f in o.faults)
    rows += [(f"  {kind}", str(n), "") for kind, n in sorted(kinds.items())]
    rows += [
        ("processes that died on their own", str(len(o.crashes)), ""),
        ("NATS permission violations (nats-server logs)", str(len(o.violations)), "0"),
        ("client sessions / chat frames seen", f"{o.views.sessions} / {o.views.frames}", ""),
        ("  frames not in the stream", str(len(o.views.missing)), "0"),
        ("  frames out of the stream's order", str(len(o.views.out_of_order)), "0"),
        ("  frames with another seq than their event's", str(len(o.views.misnumbered)), "0"),
        ("  room events a session missed", str(len(o.views.missed)), "0"),
        ("users the stream leaves in a room (exits missing)", str(len(o.left)), "0"),
        ("exits of users not in the room", str(len(o.strays)), ""),
        ("chat messages stored twice", str(len(o.twice)), ""),
        (
            "refused unavailable / of those stored",
            f"{o.refused} / {len(o.refused_stored)}",
            "- / 0",
        ),
    ]
    return rows


def table(o: Outcome) -> str:
    rows = [("check", "value", "must"), *_rows(o)]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [line]
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].ljust(widths[2])]
        out.append("| " + " | ".join(cells) + " |")
        if n == 0:
            out.append(line)
    out.append(line)
    return "\n".join(out)


def _ranges(seqs: list[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for seq in sorted(seqs):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges


def _faults_near(o: Outcome, at: float) -> list[str]:
    return [
        f"    {f.start - at:+7.1f} s .. {(f.end or f.start) - at:+7.1f} s {f.kind} {f.target}"
        + (f" ({f.note})" if f.note else "")
        for f in sorted((*o.faults, *o.crashes), key=lambda f: f.start)
        if at - BEFORE_S <= f.start <= at + AFTER_S
    ]


def _killed(o: Outcome, replica: str, ended: float) -> bool:
    """Whether a session on `replica` that ended at `ended` ended with a SIGKILL of it."""
    return any(
        f.target == replica and f.kind in ("sigkill", "crash") and f.start - 1 <= ended <= f.end + 1
        for f in (*o.faults, *o.crashes)
    )


def details(o: Outcome) -> list[str]:
    """A paragraph per lost range, reordered or mismatched event (and the first few events
    answered unavailable yet stored): registration, room, sequences, when the stream stored
    it, and the faults from `BEFORE_S` before to `AFTER_S` after."""
    stored = {e.seq: e.stored_at for e in o.stream}
    lines = []
    for r in o.results:
        if r.ended:
            lines.append(f"{r.id} (room {r.room}) ended: {o.ended_why.get(r.id, '?')}")
        found = [(f"lost {a}..{b}", a) for a, b in _ranges(r.lost)]
        found += [(f"reordered {seq} after {after}", seq) for seq, after in r.reordered]
        found += [(f"mismatched {seq}", seq) for seq in r.mismatched]
        for what, seq in found:
            at = stored.get(seq, 0.0)
            lines.append(f"{r.id} (room {r.room}): {what}, stored at {at:.3f}")
            lines += _faults_near(o, at)
    where = {e.message: e for e in o.stream if e.message is not None}
    for message in o.refused_stored[:SHOWN]:
        e = where[message]
        lines.append(
            f"{message!r} (room {e.room}, seq {e.seq}) was answered unavailable, yet stored"
            f" at {e.stored_at:.3f}"
        )
        lines += _faults_near(o, e.stored_at)
    if len(o.refused_stored) > SHOWN:
        lines.append(f"... and {len(o.refused_stored) - SHOWN} more answered unavailable, stored")
    unexplained = [(r, u) for r, u in o.left if not _killed(o, *o.sessions.get(u, ("", 0, ""))[:2])]
    if len(unexplained) < len(o.left):
        lines.append(
            f"{len(o.left) - len(unexplained)} users left in a room by the stream were on a chat"
            " replica SIGKILLed as their session ended (no process left to publish their exits)"
        )
    for room, user in unexplained[:SHOWN]:
        replica, ended, how = o.sessions.get(user, ("?", 0.0, "?"))
        lines.append(f"{user} is left in {room}: on {replica}, session ended {how} at {ended:.3f}")
        lines += _faults_near(o, ended)
    if len(unexplained) > SHOWN:
        lines.append(f"... and {len(unexplained) - SHOWN} more left in a room")
    lines += o.violations[:SHOWN]
    for room, user, seq in o.strays[:SHOWN]:
        lines.append(f"exit of {user} from {room} (seq {seq}), who was not in it")
    for client, room, message in o.views.missing:
        lines.append(f"client {client} (room {room}) saw {message!r}, which the stream lacks")
    for client, room, message, seq, actual in o.views.misnumbered[:SHOWN]:
        lines.append(f"client {client} (room {room}) got {message!r} as seq {seq}; it is {actual}")
    for client, room, seq in o.views.missed[:SHOWN]:
        lines.append(f"client {client} (room {room}) missed seq {seq}")
    for client, room, message, seq, after in o.views.out_of_order:
        lines.append(f"client {client} (room {room}) saw {message!r} (seq {seq}) after seq {after}")
    return lines
