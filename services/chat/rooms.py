"""Room membership, permissions and the events each request produces, with no I/O.

Every change is two steps: `plan_*` checks a request against the current state and returns the
events it would cause (raising `ChatError` if it is refused); once NATS has accepted those events,
`apply` makes them true here. Nothing changes for a request that NATS did not take.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from services.chat.protocol import ChatError
from services.chat.skeleton import name_key
from services.chat.token import Role, can_kick, is_protected
from shared.events import (
    ChatEvent,
    CreateEvent,
    DeleteEvent,
    EnterEvent,
    Event,
    ExitEvent,
    KickEvent,
    KickType,
    MemberType,
    RingEvent,
)

__all__ = ["Member", "Room", "Rooms"]


@dataclass(slots=True)
class Member:
    user: str
    profile: str
    type: MemberType
    host: str
    conn: Hashable
    role: Role | None = None  # from the member token; None for a non-member


@dataclass(slots=True)
class Room:
    name: str
    permanent: bool
    members: dict[str, Member] = field(default_factory=dict)  # by user name, in entry order
    by_conn: dict[Hashable, Member] = field(default_factory=dict)
    by_key: dict[str, str] = field(default_factory=dict)  # `name_key` -> the name in use


class Rooms:
    def __init__(self, permanent: Iterable[str], dynamic: bool, room_limit: int) -> None:
        self.rooms: dict[str, Room] = {name: Room(name, True) for name in permanent}
        self.dynamic = dynamic
        self.room_limit = room_limit
        # member names in use in any room (by `name_key`), with how many rooms each is in
        self.member_names: Counter[str] = Counter()

    def get(self, name: str) -> Room | None:
        return self.rooms.get(name)

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
    ) -> list[Event]:
        key = name_key(user)
        if member_type == "non-member" and self.member_names[key]:
            raise ChatError(
                "member_taken", f"{user!r} is (or looks like) a member's name; pick another"
            )
        room = self.rooms.get(room_name)
        events: list[Event] = []
        if room is None:
            if not self.dynamic:
                raise ChatError("no_such_room", f"there is no room {room_name!r}")
            events.append(CreateEvent(room_name))
        else:
            if conn in room.by_conn:
                raise ChatError("name_taken", f"you are already in room {room_name!r}")
            taken = room.by_key.get(key)
            if taken is not None:
                looks = "" if taken == user else f" (as {taken!r}, which looks the same)"
                raise ChatError("name_taken", f"{user!r} is already in room {room_name!r}{looks}")
            if len(room.members) >= self.room_limit:
                raise ChatError(
                    "room_full", f"room {room_name!r} is full ({self.room_limit} users)"
                )
        events.append(EnterEvent(room_name, user, host, profile, member_type))
        return events

    def plan_chat(self, conn: Hashable, room_name: str, message: str) -> list[Event]:
        _, member = self._room_of(conn, room_name)
        return [ChatEvent(room_name, member.user, message)]

    def plan_ring(self, conn: Hashable, room_name: str, to: str) -> list[Event]:
        room, member = self._room_of(conn, room_name)
        if to not in room.members:
            raise ChatError("not_in_room", f"{to!r} is not in room {room_name!r}")
        return [RingEvent(room_name, member.user, to)]

    def plan_kick(
        self, conn: Hashable, room_name: str, to: str, kick_type: KickType
    ) -> list[Event]:
        """The kick, and for `disconnect`/`ban` the target's exit from this room. (Its exits
        from other rooms are planned one room at a time, under each room's lock.)"""
        room, kicker = self._room_of(conn, room_name)
        if not can_kick(kicker.role):
            raise ChatError("not_allowed", "only monitors and admins may kick")
        target = room.members.get(to)
        if target is None:
            raise ChatError("not_in_room", f"{to!r} is not in room {room_name!r}")
        if is_protected(target.role):
            raise ChatError("not_allowed", f"{to!r} is a {target.role} and cannot be kicked")
        events: list[Event] = [KickEvent(room_name, kicker.user, to, kick_type)]
        if kick_type != "remove":
            events.append(ExitEvent(room_name, to))
        return events + self._delete_if_emptied(room, 1)

    def plan_exit(self, conn: Hashable, room_name: str) -> list[Event]:
        room, member = self._room_of(conn, room_name)
        return [ExitEvent(room_name, member.user), *self._delete_if_emptied(room, 1)]

    def _delete_if_emptied(self, room: Room, leaving: int) -> list[Event]:
        if not room.permanent and len(room.members) <= leaving:
            return [DeleteEvent(room.name)]
        return []

    def apply(self, conn: Hashable, event: Event, role: Role | None = None) -> None:
        """Make an accepted event true. `conn` and `role` are the entrant's for `enter`."""
        if isinstance(event, CreateEvent):
            self.rooms.setdefault(event.room, Room(event.room, False))
        elif isinstance(event, EnterEvent):
            room = self.rooms[event.room]
            member = Member(event.user, event.profile, event.type, event.host, conn, role)
            room.members[event.user] = member
            room.by_conn[conn] = member
            key = name_key(event.user)
            room.by_key[key] = event.user
            if event.type == "member":
                self.member_names[key] += 1
        elif isinstance(event, ExitEvent):
            self._remove(event.room, event.user)
        elif isinstance(event, KickEvent) and event.type == "remove":
            self._remove(event.room, event.to)
        elif isinstance(event, DeleteEvent):
            self.rooms.pop(event.room, None)

    def _remove(self, room_name: str, user: str) -> None:
        room = self.rooms.get(room_name)
        member = room.members.pop(user, None) if room else None
        if room is None or member is None:
            return
        room.by_conn.pop(member.conn, None)
        key = name_key(member.user)
        room.by_key.pop(key, None)
        if member.type == "member":
            self.member_names[key] -= 1
            if self.member_names[key] <= 0:
                del self.member_names[key]
