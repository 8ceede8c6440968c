"""Storing one membership event so that it holds whichever replica wins a race, and knowing the
fate of any event even when JetStream's answer is lost.

A membership event (create, enter, exit, kick, delete) is planned against the rooms as this
replica has read them, and published with the room's last sequence as the expected one. If
another event of the room came in between (another replica's, or a chat), JetStream refuses it
and says the room's actual last sequence: once the rooms have been read that far, the caller
plans again on the new state (the room may now be full, the user gone). A publish whose answer
is lost or late is sent again under the same `Nats-Msg-Id` and the same expected sequence until
its fate is known: stored (its ack, or the stream handing it back, which the fold reports
through `Pending.seen`), or refused; never given up halfway, so a request the client was told
failed left no trace in the stream, and an accepted departure is stored however long NATS is
away (`alive` says until when). Chats and rings go the same way, without the expected
sequence: once sent, they are sent again under their message id until stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from services.chat.fold import Fold, Pending
from services.chat.protocol import ChatError
from services.chat.publisher import Conflict, Publisher
from services.chat.roomlog import RoomLog
from shared.events import Event

__all__ = ["Committer", "FateUnknown"]

log = logging.getLogger(__name__)

RETRY_FIRST_S = 0.05


class FateUnknown(Exception):
    """An event was sent, and its fate not yet known when `alive()` turned false (the
    requester left, or this replica is fenced): it may yet be stored, so nobody may be told
    it failed."""


RETRY_MAX_S = 1.0


class Committer:
    def __init__(self, publisher: Publisher, roomlog: RoomLog, fold: Fold) -> None:
        self.publisher = publisher
        self.roomlog = roomlog
        self.fold = fold
        self._hints: dict[str, int] = {}  # a room's last sequence as JetStream last said it

    def expected(self, room: str) -> int:
        room_state = self.fold.rooms.get(room)
        if room_state is not None:
            return room_state.seq
        return self._hints.get(room, 0)

    async def store(
        self,
        event: Event,
        pending: Pending,
        *,
        must: bool,
        alive: Callable[[], bool],
        extra: tuple[tuple[str, str], ...] = (),
        checked: bool = True,
    ) -> int | None:
        """The sequence `event` was stored at, once the rooms have applied it; None when the
        room moved on first (plan again). Unless `checked`, it is stored whatever came in
        between (a chat or ring: no expected sequence, never a conflict).

        While NATS does not answer, an event that `must` be stored (a departure) is sent again
        as long as `alive()`, and so is any other once it has been sent (its fate is unknown);
        one that could not even be sent raises `ChatError("unavailable")` at once (nothing was
        stored). When `alive()` turns false first, `FateUnknown` is raised: if the event was
        stored after all, the fold finds it without its requester (an `enter` of a member no
        connection holds is then made to leave, cluster.py)."""
        msg_id = self.publisher.new_id()
        expected = self.expected(event.room) if checked else None
        self.fold.pending[msg_id] = pending
        delay = RETRY_FIRST_S
        sent = False
        try:
            while True:
                try:
                    ack = await self.publisher.submit(event, msg_id, expected=expected, extra=extra)
                    sent = True
                    seq = await ack
                except Conflict as conflict:
                    last = conflict.last_seq or await self.roomlog.stream_last()
                    await self.roomlog.reach(last)
                    if pending.seen.done():  # stored by an earlier try whose ack was lost
                        return pending.seen.result()
                    self._hints[event.room] = max(last, self._hints.get(event.room, 0))
                    if len(self._hints) > 10000:
                        self._hints.clear()
                    return None
                except ChatError:
                    if pending.seen.done():
                        return pending.seen.result()
                    if not (sent or must):
                        raise
                    if not alive():
                        raise FateUnknown(event.kind) from None
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_S)
                    continue
                await self.roomlog.reach(seq)
                return seq
        finally:
            self.fold.pending.pop(msg_id, None)
