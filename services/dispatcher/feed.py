"""What one registration has in hand and where it stands in the stream, with no I/O.

A `Feed` is fed two ways. While it is *live*, the replica's one reader of the stream (the tail)
offers it each new event of its room as it goes by. When it is *catching up* (just started, or
its callback is slower than its room: `read_ahead` events already in hand), it ignores the tail
and reads its room's events from its own position, a batch at a time, until a read finds the
end of what the stream holds; then it is live again. Sequences decide every step, never timing:

- `last_held`: the highest sequence in hand or answered. An event at or below it is never
  taken twice; one above it is taken only in order.
- `hint`: the highest sequence the tail offered while catching up. A read that found the end
  goes live only if it reached the hint; otherwise an event stored after the read started may
  have gone by on the tail, and one more read fetches it.

So in either mode each event of the room is taken exactly once and in stream order, however the
tail and the reads interleave.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shared.subscriptions import Subscription

__all__ = ["Feed", "HeldEvent"]


@dataclass(frozen=True, slots=True)
class HeldEvent:
    seq: int  # stream sequence
    stored_at: float  # unix time JetStream stored it
    body: bytes | None  # the XML, rendered once for its room's registrations; None: not an event


class Feed:
    __slots__ = (
        "catching_up",
        "delivered",
        "ended",
        "entry",
        "flushed",
        "held",
        "hint",
        "last_answered",
        "last_held",
        "position_revision",
        "read_ahead",
        "retired",
        "sub",
    )

    def __init__(
        self, sub: Subscription, entry: int, delivered: int, read_ahead: int, live: bool
    ) -> None:
        self.sub = sub
        self.entry = entry  # revision of the registration entry this feed serves
        self.delivered = delivered  # last sequence answered 200 (or where it starts)
        self.flushed = delivered  # last `delivered` stored in the positions bucket
        self.position_revision = 0  # of its key in the positions bucket; 0: none yet
        self.held: list[HeldEvent] = []
        self.last_held = delivered
        self.catching_up = not live
        self.hint = 0
        self.read_ahead = read_ahead
        self.retired = False  # no longer served here: finish the POST in hand, nothing more
        self.ended = False  # its callback ended it
        self.last_answered = 0  # the last event its callback answered 200 here; 0: none yet

    def takes(self, seq: int) -> bool:
        """Whether `offer` would take the event at `seq` (so the tail renders it only then)."""
        return not self.catching_up and seq > self.last_held and len(self.held) < self.read_ahead

    def offer(self, event: HeldEvent) -> bool:
        """The tail's offer of its room's next event; True if it was taken."""
        if not self.takes(event.seq):
            self.offer_missed(event.seq)
            return False
        self.held.append(event)
        self.last_held = event.seq
        return True

    def offer_missed(self, seq: int) -> None:
        """The tail went by `seq`, which this feed does not take now."""
        if self.catching_up:
            self.hint = max(self.hint, seq)
        elif seq > self.last_held:  # full: read it later from the stream, at our own pace
            self.catching_up = True
            self.hint = seq

    def wanted(self) -> int:
        """How many events a read should ask for now (0: no read)."""
        if not self.catching_up:
            return 0
        return self.read_ahead - len(self.held)

    def fill(self, events: Iterable[HeldEvent], exhausted: bool) -> None:
        """Take what a read from `last_held + 1` found; `exhausted`: the stream held no more
        of this room when the read ran."""
        for event in events:
            if event.seq > self.last_held:
                self.held.append(event)
                self.last_held = event.seq
        if exhausted and self.hint <= self.last_held:
            self.catching_up = False

    def head(self) -> HeldEvent | None:
        return self.held[0] if self.held else None

    def answered(self, event: HeldEvent) -> None:
        """`event` was answered 200. Ignored if it is no longer in hand (the feed restarted)."""
        if self.held and self.held[0] is event:
            del self.held[0]
            self.delivered = event.seq

    def restart(self, delivered: int) -> None:
        """Forget what is in hand and catch up from `delivered` (another replica moved it)."""
        self.held.clear()
        self.delivered = self.flushed = self.last_held = delivered
        self.catching_up = True
        self.hint = 0

    @property
    def idle(self) -> bool:
        """Nothing in hand, nothing to read, and its position stored: only the tail can give it
        work."""
        return not self.held and not self.catching_up and self.flushed == self.delivered

    def covered(self, tail_seq: int) -> int:
        """Every event of its room up to the returned sequence is answered and stored."""
        return tail_seq if self.idle else self.flushed
