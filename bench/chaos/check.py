"""What the chaos run checks, computed from what it recorded (pure: no I/O).

Inputs: the events stream as it stands after the run (`StreamEvent`, one per stored event),
each registration with the stream sequence it starts after, the POSTs its receiver got in
arrival order (`Delivery`: the sequence from its `webhook-id` and the event it carried), and
each client session's chat frames for its room in the order they arrived (`View`).

- **lost**: an event of the registration's room stored after its start that never reached its
  receiver;
- **reordered**: after dropping repeats of a `webhook-id`, a POST whose event comes before one
  already received;
- **duplicates**: POSTs of a `webhook-id` already received (allowed: at least once);
- **mismatched**: a POST whose event is not the one the stream holds at its sequence, or that
  belongs to no event of the registration's room after its start;
- **views**: every chat frame a client saw must be a stream event of its room (messages are
  unique) carrying that event's `seq`, one session's frames must follow the stream's order, and
  a session must miss none of its room's events between its `entered` and its last frame;
- **membership**: replaying the stream's `enter`, `exit` and `kick` events, who is still in a
  room when every client has left (an `exit` that never reached the stream), and which `exit`
  or `kick` names someone not in the room.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "Delivery",
    "Registration",
    "RegistrationResult",
    "StreamEvent",
    "View",
    "ViewResult",
    "check_registration",
    "check_views",
    "membership",
    "refused_but_stored",
    "stored_twice",
]


@dataclass(frozen=True, slots=True)
class StreamEvent:
    seq: int
    room: str
    data: str  # the event as canonical JSON
    message: str | None  # a chat event's message (unique in a chaos run); None for the others
    stored_at: float  # unix seconds


@dataclass(frozen=True, slots=True)
class Registration:
    id: str
    room: str
    start_seq: int | None  # None: the registration is gone (it was ended)


@dataclass(frozen=True, slots=True)
class Delivery:
    seq: int
    data: str  # the POSTed event as canonical JSON


@dataclass(frozen=True, slots=True)
class View:
    """One client's session in one room: the room-event frames it was sent, in arrival order,
    each as (its `seq`, the message of a chat frame or None), the `entered` reply first."""

    client: str
    room: str
    frames: tuple[tuple[int, str | None], ...]


@dataclass
class RegistrationResult:
    id: str
    room: str
    ended: bool
    expected: int = 0
    posts: int = 0
    unique: int = 0
    lost: list[int] = field(default_factory=list)
    reordered: list[tuple[int, int]] = field(default_factory=list)  # (seq, after this seq)
    mismatched: list[int] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return self.posts - self.unique


@dataclass
class ViewResult:
    sessions: int = 0
    frames: int = 0
    missing: list[tuple[str, str, str]] = field(default_factory=list)  # client, room, message
    # client, room, message, its sequence, the greater sequence seen before it
    out_of_order: list[tuple[str, str, str, int, int]] = field(default_factory=list)
    # client, room, message, the frame's seq, the stream's sequence of the message
    misnumbered: list[tuple[str, str, str, int, int]] = field(default_factory=list)
    missed: list[tuple[str, str, int]] = field(default_factory=list)  # client, room, seq


def check_registration(
    stream: Iterable[StreamEvent], registration: Registration, deliveries: Iterable[Delivery]
) -> RegistrationResult:
    """Lost, reordered, duplicate and mismatched POSTs of one registration."""
    result = RegistrationResult(
        registration.id, registration.room, ended=registration.start_seq is None
    )
    start = registration.start_seq
    expected = {
        e.seq: e.data
        for e in stream
        if e.room == registration.room and start is not None and e.seq > start
    }
    result.expected = len(expected)
    seen: set[int] = set()
    highest = 0
    for delivery in deliveries:
        result.posts += 1
        if delivery.seq in seen:
            continue
        seen.add(delivery.seq)
        if delivery.seq < highest:
            result.reordered.append((delivery.seq, highest))
        highest = max(highest, delivery.seq)
        if start is not None and expected.get(delivery.seq) != delivery.data:
            result.mismatched.append(delivery.seq)
    result.unique = len(seen)
    result.lost = sorted(set(expected) - seen)
    return result


def check_views(stream: Iterable[StreamEvent], views: Iterable[View]) -> ViewResult:
    """Each session's frames against the stream: its chat frames present, in the room, in
    order and numbered with their event's sequence; and no event its room's members are all
    sent (`enter`, `exit`, `chat`, `kick`) missed between its `entered` and its last frame."""
    stream = list(stream)
    where = {(e.room, e.message): e.seq for e in stream if e.message is not None}
    shared: dict[str, list[int]] = {}
    for e in stream:
        if json.loads(e.data)["kind"] in ("enter", "exit", "chat", "kick"):
            shared.setdefault(e.room, []).append(e.seq)
    result = ViewResult()
    for view in views:
        result.sessions += 1
        highest = 0
        for frame_seq, message in view.frames:
            if message is None:
                continue
            result.frames += 1
            seq = where.get((view.room, message))
            if seq is None:
                result.missing.append((view.client, view.room, message))
                continue
            if seq != frame_seq:
                result.misnumbered.append((view.client, view.room, message, frame_seq, seq))
            if seq < highest:
                result.out_of_order.append((view.client, view.room, message, seq, highest))
            highest = max(highest, seq)
        got = {seq for seq, _ in view.frames}
        if got:
            first, last = view.frames[0][0], max(got)
            result.missed += [
                (view.client, view.room, seq)
                for seq in shared.get(view.room, [])
                if first < seq <= last and seq not in got
            ]
    return result


def stored_twice(stream: Iterable[StreamEvent]) -> list[str]:
    """Chat messages the stream holds more than once (a retried publish stored again)."""
    counts = Counter(e.message for e in stream if e.message is not None)
    return sorted(m for m, n in counts.items() if n > 1)


def refused_but_stored(stream: Iterable[StreamEvent], refused: Iterable[str]) -> list[str]:
    """Chat messages whose sender was answered `unavailable` that the stream holds anyway."""
    stored = {e.message for e in stream if e.message is not None}
    return sorted(m for m in refused if m in stored)


def membership(
    stream: Iterable[StreamEvent],
) -> tuple[list[tuple[str, str]], list[tuple[str, str, int]]]:
    """Who the stream leaves in a room at its end (room, user), and each `exit` or `kick`
    (but a `remove`) of someone not in the room then (room, user, seq)."""
    members: dict[str, set[str]] = {}
    strays: list[tuple[str, str, int]] = []
    for event in stream:
        data = json.loads(event.data)
        kind = data["kind"]
        room = members.setdefault(event.room, set())
        if kind == "enter":
            room.add(data["user"])
        elif kind in ("exit", "kick"):
            user = data["user"] if kind == "exit" else data["to"]
            if kind == "exit" or data["type"] == "remove":
                if user not in room:
                    strays.append((event.room, user, event.seq))
                room.discard(user)
    left = sorted((room, user) for room, users in members.items() for user in users)
    return left, strays
