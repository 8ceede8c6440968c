"""Room membership and the events each request produces, with no I/O.

Every change is two steps: `plan_*` checks a request against the current state and returns the
events it would cause (raising `ChatError` if it is refused); once NATS has accepted those events,
`apply` makes them true here. Nothing changes for a request that NATS did not take.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from services.chat.protocol import ChatError
from shared.events import (
    ChatEvent,
    CreateEvent,
    DeleteEvent,
    EnterEvent,
    Event,
    ExitEvent,
    KickEvent,
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


@dataclass(slots=True)
class Room:
    name: str
    permanent: bool
    members: dict[str, Member] = field(default_factory=dict)

    def member_of(self, conn: Hashable) -> Member | None:
        for member in self.members.values():
            if member.conn == conn:
                return member
        return None


class Rooms:
    def __init__(self, permanent: Iterable[str], dynamic: bool, room_limit: int) -> None:
        self.rooms: dict[str, Room] = {name: Room(name, True) for name in permanent}
        self.dynamic = dynamic
        self.room_limit = room_limit

    def get(self, name: str) -> Room | None:
        return self.rooms.get(name)

    def _room_of(self, conn: Hashable, name: str) -> tuple[Room, Member]:
        room = self.rooms.get(name)
        member = room.member_of(conn) if room else None
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
        room = self.rooms.get(room_name)
        events: list[Event] = []
        if room is None:
            if not self.dynamic:
                raise ChatError("no_such_room", f"there is no room {room_name!r}")
            events.append(CreateEvent(room_name))
        else:
            if room.member_of(conn) is not None:
                raise ChatError("name_taken", f"you are already in room {room_name!r}")
            if user in room.members:
                raise ChatError("name_taken", f"{user!r} is already in room {room_name!r}")
            if len(room.members) >= self.room_limit:
                raise ChatError("room_full", f"room {room_name!r} is full")
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

    def plan_exit(self, conn: Hashable, room_name: str) -> list[Event]:
        room, member = self._room_of(conn, room_name)
        return [ExitEvent(room_name, member.user), *self._delete_if_emptied(room, 1)]

    def _delete_if_emptied(self, room: Room, leaving: int) -> list[Event]:
        if not room.permanent and len(room.members) <= leaving:
            return [DeleteEvent(room.name)]
        return []

    def apply(self, conn: Hashable, event: Event) -> None:
        """Make an accepted event true. `conn` is the entrant's connection for `enter`."""
        if isinstance(event, CreateEvent):
            self.rooms.setdefault(event.room, Room(event.room, False))
        elif isinstance(event, EnterEvent):
            room = self.rooms[event.room]
            room.members[event.user] = Member(
                event.user, event.profile, event.type, event.host, conn
            )
        elif isinstance(event, ExitEvent):
            self.rooms[event.room].members.pop(event.user, None)
        elif isinstance(event, KickEvent) and event.type == "remove":
            self.rooms[event.room].members.pop(event.to, None)
        elif isinstance(event, DeleteEvent):
            self.rooms.pop(event.room, None)
