"""Every room's membership as the fold of its events, and the events each request would cause;
no I/O.

The rooms are what the events stream says they are: every chat replica applies every event,
in the stream's order, with `apply` (services/chat/roomlog.py feeds it), so every replica holds
the same rooms. A request is planned against that state (`plan_*`, raising `ChatError` if it is
refused); its events are published with the room's last sequence as the expected one, so a
plan made on a state another replica has moved on from is refused by JetStream and made again
(services/chat/commit.py). `apply` is idempotent per room (an event at or below a room's
sequence is passed over), so a snapshot and the stream after it can overlap. A room also keeps
its last chat messages (`history`), which services/chat/fold.py appends to.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from services.chat.protocol import ChatError
from services.chat.skeleton import name_key
from services.chat.token import Role, can_kick, is_protected
from shared.events import (
    CreateEvent,
    DeleteEvent,
    EnterEvent,
    Event,
    ExitEvent,
    KickEvent,
    KickType,
    MemberType,
)

__all__ = ["Member", "Room", "Rooms", "Said"]


@dataclass(slots=True)
class Said:
    """One chat message of a room's history."""

    user: str
    message: str
    at: float  # unix time the stream stored it
    seq: int
    encoded: str = field(default="", compare=False)  # its JSON in `entered`, made once


@dataclass(slots=True)
class Member:
    user: str
    profile: str
    type: MemberType
    host: str
    replica: str  # the chat replica the user is connected to
    role: Role | None = None  # from the member token; None for a non-member
    conn: Hashable | None = None  # the connection, on the replica that holds it


@dataclass(slots=True)
class Room:
    name: str
    permanent: bool
    seq: int = 0  # the stream sequence of the room's last event applied
    members: dict[str, Member] = field(default_factory=dict)  # by user name, in entry order
    by_conn: dict[Hashable, Member] = field(default_factory=dict)  # this replica's members
    by_key: dict[str, str] = field(default_factory=dict)  # `name_key` -> the name in use
    history: deque[Said] = field(default_factory=deque)  # the last chats, oldest first


class Rooms:
    def __init__(
        self, permanent: Iterable[str], dynamic: bool, room_limit: int, history: int = 0
    ) -> None:
        self.history = history  # chat messages a room keeps
        self.rooms: dict[str, Room] = {name: self._new(name, True) for name in permanent}
        self.dynamic = dynamic
        self.room_limit = room_limit
        # member names in use in any room (by `name_key`), with how many rooms each is in
        self.member_names: Counter[str] = Counter()

    def _new(self, name: str, permanent: bool) -> Room:
        return Room(name, permanent, history=deque(maxlen=self.history))

    def get(self, name: str) -> Room | None:
        return self.rooms.get(name)

    def seq_of(self, name: str) -> int:
        room = self.rooms.get(name)
        return room.seq if room else 0

    def _room_of(self, conn: Hashable, name: str) -> tuple[Room, Member]:
        room = self.rooms.get(name)
        member = room.by_conn.get(conn) if room else None
        if room is None or member is None:
            raise ChatError("not_in_room", f"you are not in room {name!r}")
        return room, member

    def plan_enter(
        self,
        conn: Hashable,
        room_name: str,
        user: str,
        profile: str,
        member_type: MemberType,
        host: str,
    ) -> Event:
        """The next event of an `enter`: the room's `create` if it does not exist yet, else
        the `enter` itself."""
        key = name_key(user)
        if member_type == "non-member" and self.member_names[key]:
            raise ChatError(
                "member_taken", f"{user!r} is (or looks like) a member's name; pick another"
            )
        room = self.rooms.get(room_name)
        if room is None:
            if not self.dynamic:
                raise ChatError("no_such_room", f"there is no room {room_name!r}")
            return CreateEvent(room_name)
        if conn in room.by_conn:
            raise ChatError("name_taken", f"you are already in room {room_name!r}")
        taken = room.by_key.get(key)
        if taken is not None:
            looks = "" if taken == user else f" (as {taken!r}, which looks the same)"
            raise ChatError("name_taken", f"{user!r} is already in room {room_name!r}{looks}")
        if len(room.members) >= self.room_limit:
            raise ChatError("room_full", f"room {room_name!r} is full ({self.room_limit} users)")
        return EnterEvent(room_name, user, host, profile, member_type)

    def member_of(self, conn: Hashable, room_name: str) -> Member:
        """The requester's membership of a room (for `chat`, `ring`, `kick`, `exit`)."""
        return self._room_of(conn, room_name)[1]

    def check_ring(self, conn: Hashable, room_name: str, to: str) -> Member:
        room, member = self._room_of(conn, room_name)
        if to not in room.members:
            raise ChatError("not_in_room", f"{to!r} is not in room {room_name!r}")
        return member

    def plan_kick(self, conn: Hashable, room_name: str, to: str, kick_type: KickType) -> Event:
        room, kicker = self._room_of(conn, room_name)
        if not can_kick(kicker.role):
            raise ChatError("not_allowed", "only monitors and admins may kick")
        target = room.members.get(to)
        if target is None:
            raise ChatError("not_in_room", f"{to!r} is not in room {room_name!r}")
        if is_protected(target.role):
            raise ChatError("not_allowed", f"{to!r} is a {target.role} and cannot be kicked")
        return KickEvent(room_name, kicker.user, to, kick_type)

    def plan_leave(self, room_name: str, member: Member) -> Event | None:
        """The next event of `member` leaving a room: its `exit`, or once it is out, the room's
        `delete` if that emptied a dynamic room; None when there is nothing left to do. (A
        later entrant of the same name is another `Member`, and stays.)"""
        room = self.rooms.get(room_name)
        if room is None:
            return None
        if room.members.get(member.user) is member:
            return ExitEvent(room_name, member.user)
        if not room.permanent and not room.members:
            return DeleteEvent(room_name)
        return None

    def apply(
        self,
        seq: int,
        event: Event,
        replica: str = "",
        role: Role | None = None,
        conn: Hashable | None = None,
    ) -> bool:
        """Make a stored event true; False if the room had it already (at or below its
        sequence). `replica`, `role` and `conn` describe the entrant of an `enter`."""
        room = self.rooms.get(event.room)
        if room is not None and seq <= room.seq:
            return False
        if room is None:
            if isinstance(event, DeleteEvent):
                return True
            room = self.rooms[event.room] = self._new(event.room, False)
        room.seq = seq
        if isinstance(event, EnterEvent):
            member = Member(event.user, event.profile, event.type, event.host, replica, role, conn)
            self._add(room, member)
        elif isinstance(event, ExitEvent):
            self._remove(room, event.user)
        elif isinstance(event, KickEvent) and event.type == "remove":
            self._remove(room, event.to)
        elif isinstance(event, DeleteEvent):
            self._drop(room)
        return True

    def restore(
        self, room_name: str, seq: int, members: Iterable[Member], history: Iterable[Said] = ()
    ) -> None:
        """A room as a snapshot saw it at `seq` (before the events after it are applied)."""
        room = self.rooms.get(room_name)
        if room is not None:
            if room.seq >= seq:
                return
            self._drop(room, keep=room.permanent)
        room = self.rooms.get(room_name)
        if room is None:
            room = self.rooms[room_name] = self._new(room_name, False)
        room.seq = seq
        room.history.clear()
        room.history.extend(history)
        for member in members:
            self._add(room, member)

    def _add(self, room: Room, member: Member) -> None:
        if member.user in room.members:
            self._remove(room, member.user)
        room.members[member.user] = member
        if member.conn is not None:
            room.by_conn[member.conn] = member
        key = name_key(member.user)
        room.by_key[key] = member.user
        if member.type == "member":
            self.member_names[key] += 1

    def _remove(self, room: Room, user: str) -> Member | None:
        member = room.members.pop(user, None)
        if member is None:
            return None
        if member.conn is not None:
            room.by_conn.pop(member.conn, None)
        key = name_key(member.user)
        room.by_key.pop(key, None)
        if member.type == "member":
            self.member_names[key] -= 1
            if self.member_names[key] <= 0:
                del self.member_names[key]
        return member

    def _drop(self, room: Room, keep: bool = False) -> None:
        for user in list(room.members):
            self._remove(room, user)
        if not keep and not room.permanent:
            self.rooms.pop(room.name, None)
