"""Room membership and the events each request produces (no I/O)."""

from __future__ import annotations

import weakref

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.chat.protocol import ChatError
from services.chat.rooms import Member, Rooms
from services.chat.token import Role
from shared.events import (
    CreateEvent,
    DeleteEvent,
    EnterEvent,
    Event,
    ExitEvent,
    KickEvent,
    MemberType,
)


class Log:
    """Applies events as the stream would hand them back: each with the next sequence."""

    def __init__(self, rooms: Rooms) -> None:
        self.rooms = rooms
        self.seq = 0

    def __call__(
        self, event: Event, conn: str | None = None, role: Role | None = None, replica: str = "r1"
    ) -> Event:
        self.seq += 1
        assert self.rooms.apply(self.seq, event, replica, role, conn)
        return event


_logs: weakref.WeakKeyDictionary[Rooms, Log] = weakref.WeakKeyDictionary()


def log_of(rooms: Rooms) -> Log:
    return _logs.setdefault(rooms, Log(rooms))


def enter(rooms: Rooms, conn: str, room: str, user: str, role: Role | None = None) -> list[Event]:
    """Every event of one `enter`: the room's `create` first when it is new."""
    kind: MemberType = "member" if role else "non-member"
    done = []
    while True:
        event = rooms.plan_enter(conn, room, user, "", kind, "127.0.0.1")
        done.append(log_of(rooms)(event, conn, role))
        if isinstance(event, EnterEvent):
            return done


def leave(rooms: Rooms, conn: str, room: str) -> list[Event]:
    member = rooms.member_of(conn, room)
    done = []
    while (event := rooms.plan_leave(room, member)) is not None:
        done.append(log_of(rooms)(event))
    return done


def test_dynamic_room_is_created_then_deleted_with_its_last_exit() -> None:
    rooms = Rooms(["Lobby"], dynamic=True, room_limit=25)
    assert enter(rooms, "c1", "Den", "alice") == [
        CreateEvent("Den"),
        EnterEvent("Den", "alice", "127.0.0.1", ""),
    ]
    assert enter(rooms, "c2", "Den", "bob") == [EnterEvent("Den", "bob", "127.0.0.1", "")]
    assert rooms.member_of("c1", "Den").user == "alice"
    assert leave(rooms, "c1", "Den") == [ExitEvent("Den", "alice")]
    assert leave(rooms, "c2", "Den") == [ExitEvent("Den", "bob"), DeleteEvent("Den")]
    assert rooms.get("Den") is None


def test_permanent_room_is_never_created_nor_deleted() -> None:
    rooms = Rooms(["Lobby"], dynamic=True, room_limit=25)
    assert enter(rooms, "c1", "Lobby", "alice") == [EnterEvent("Lobby", "alice", "127.0.0.1", "")]
    assert leave(rooms, "c1", "Lobby") == [ExitEvent("Lobby", "alice")]
    assert rooms.get("Lobby") is not None


def test_an_event_is_applied_once_and_a_snapshot_is_restored_under_later_events() -> None:
    rooms = Rooms([], dynamic=True, room_limit=25)
    assert rooms.apply(5, CreateEvent("R"))
    assert rooms.apply(6, EnterEvent("R", "ann", "h", ""), "r2")
    assert not rooms.apply(6, EnterEvent("R", "ann", "h", ""), "r2")  # seen already
    assert not rooms.apply(4, ExitEvent("R", "ann"))
    room = rooms.get("R")
    assert room is not None and room.seq == 6 and room.members["ann"].replica == "r2"
    assert room.members["ann"].conn is None and not room.by_conn  # another replica's user
    other = Rooms([], dynamic=True, room_limit=25)
    other.restore("R", 6, [Member("ann", "", "non-member", "h", "r2")])
    other.restore("R", 3, [])  # an older snapshot changes nothing
    assert other.apply(7, ExitEvent("R", "ann")) and other.apply(8, DeleteEvent("R"))
    assert other.get("R") is None and not other.member_names


def test_a_later_entrant_of_the_same_name_is_not_made_to_leave() -> None:
    rooms = Rooms(["Lobby"], dynamic=True, room_limit=25)
    enter(rooms, "c1", "Lobby", "ann")
    first = rooms.member_of("c1", "Lobby")
    leave(rooms, "c1", "Lobby")
    enter(rooms, "c2", "Lobby", "ann")
    assert rooms.plan_leave("Lobby", first) is None


def test_refusals() -> None:
    rooms = Rooms(["Lobby"], dynamic=False, room_limit=1)
    with pytest.raises(ChatError) as err:
        rooms.plan_enter("c1", "Nowhere", "alice", "", "non-member", "h")
    assert err.value.code == "no_such_room"
    enter(rooms, "c1", "Lobby", "alice")
    with pytest.raises(ChatError) as err:
        rooms.plan_enter("c2", "Lobby", "bob", "", "non-member", "h")
    assert err.value.code == "room_full"
    with pytest.raises(ChatError) as err:
        rooms.member_of("c2", "Lobby")
    assert err.value.code == "not_in_room"
    rooms.room_limit = 5
    with pytest.raises(ChatError) as err:
        rooms.plan_enter("c2", "Lobby", "alice", "", "non-member", "h")
    assert err.value.code == "name_taken"


def staff(rooms: Rooms, conn: str, room: str, user: str, role: Role) -> None:
    enter(rooms, conn, room, user, role)


def test_kicks() -> None:
    rooms = Rooms(["Lobby"], dynamic=True, room_limit=25)
    staff(rooms, "mod", "Den", "Mo", "monitor")
    enter(rooms, "c1", "Den", "bob")
    for kind in ("remove", "disconnect", "ban"):
        assert rooms.plan_kick("mod", "Den", "bob", kind) == KickEvent("Den", "Mo", "bob", kind)
    log_of(rooms)(KickEvent("Den", "Mo", "bob", "remove"))
    room = rooms.get("Den")
    assert room is not None and list(room.members) == ["Mo"] and "c1" not in room.by_conn


def test_kick_permissions() -> None:
    rooms = Rooms(["Lobby"], dynamic=True, room_limit=25)
    enter(rooms, "c1", "Lobby", "bob")
    staff(rooms, "m1", "Lobby", "Mo", "monitor")
    staff(rooms, "a1", "Lobby", "Ad", "admin")
    staff(rooms, "p1", "Lobby", "Pat", "member")
    for conn, to, code in [
        ("c1", "Pat", "not_allowed"),  # a non-member may not kick
        ("p1", "bob", "not_allowed"),  # nor may a plain member
        ("m1", "Ad", "not_allowed"),  # nobody kicks an admin
        ("a1", "Mo", "not_allowed"),  # nor a monitor
        ("m1", "ghost", "not_in_room"),
        ("x9", "bob", "not_in_room"),  # the kicker must be in the room
    ]:
        with pytest.raises(ChatError) as err:
            rooms.plan_kick(conn, "Lobby", to, "remove")
        assert err.value.code == code, (conn, to)
    assert rooms.plan_kick("a1", "Lobby", "Pat", "remove")


def test_member_names_are_reserved_while_in_use() -> None:
    rooms = Rooms(["Lobby"], dynamic=True, room_limit=25)
    staff(rooms, "m1", "Lobby", "Ann", "member")
    for name in ("Ann", "ann", "ANN"):
        with pytest.raises(ChatError) as err:
            rooms.plan_enter("c1", "Other", name, "", "non-member", "h")
        assert err.value.code == "member_taken"
    assert rooms.plan_enter("m2", "Other", "Ann", "", "member", "h")  # the member, elsewhere
    log_of(rooms)(ExitEvent("Lobby", "Ann"))
    assert rooms.plan_enter("c1", "Other", "Ann", "", "non-member", "h")


LOOK_ALIKES = ["\uff41\uff4e\uff4e", "\u0430nn", "ann\u200b", "ANN", "\u0391nn"]


@pytest.mark.parametrize("alike", LOOK_ALIKES)
def test_a_name_that_looks_like_a_members_is_taken(alike: str) -> None:
    rooms = Rooms(["Lobby"], dynamic=True, room_limit=25)
    staff(rooms, "m1", "Lobby", "ann", "member")
    for room in ("Lobby", "Other"):
        with pytest.raises(ChatError) as err:
            rooms.plan_enter("c1", room, alike, "", "non-member", "h")
        assert err.value.code == "member_taken"
    log_of(rooms)(ExitEvent("Lobby", "ann"))
    assert rooms.plan_enter("c1", "Other", alike, "", "non-member", "h")


@pytest.mark.parametrize("alike", LOOK_ALIKES)
def test_a_name_that_looks_like_one_in_the_room_is_taken(alike: str) -> None:
    rooms = Rooms(["Lobby"], dynamic=True, room_limit=25)
    enter(rooms, "c1", "Lobby", "ann")
    with pytest.raises(ChatError) as err:
        rooms.plan_enter("c2", "Lobby", alike, "", "non-member", "h")
    assert err.value.code == "name_taken" and "'ann'" in err.value.message
    with pytest.raises(ChatError) as err:  # a member with a look-alike token name too
        rooms.plan_enter("c2", "Lobby", alike, "", "member", "h")
    assert err.value.code == "name_taken"
    enter(rooms, "c2", "Elsewhere", alike)  # another room: not in use there
    log_of(rooms)(ExitEvent("Lobby", "ann"))
    enter(rooms, "c2", "Lobby", alike)  # free once ann has left
    room = rooms.get("Lobby")
    assert room is not None and list(room.members) == [alike]


def test_ring() -> None:
    rooms = Rooms(["Lobby"], dynamic=True, room_limit=25)
    enter(rooms, "c1", "Lobby", "ann")
    enter(rooms, "c2", "Lobby", "bob")
    assert rooms.check_ring("c1", "Lobby", "bob").user == "ann"
    with pytest.raises(ChatError) as err:
        rooms.check_ring("c1", "Lobby", "carl")
    assert err.value.code == "not_in_room"


@given(st.lists(st.tuples(st.sampled_from("abcd"), st.sampled_from(["enter", "exit", "kick"]))))
def test_membership_stays_consistent(steps: list[tuple[str, str]]) -> None:
    rooms = Rooms([], dynamic=True, room_limit=3)
    staff(rooms, "mod", "R", "Mod", "admin")
    for user, action in steps:
        try:
            if action == "enter":
                enter(rooms, user, "R", user)
            elif action == "exit":
                leave(rooms, user, "R")
            else:
                log_of(rooms)(rooms.plan_kick("mod", "R", user, "remove"))
        except ChatError:
            continue
        room = rooms.get("R")
        assert room is not None  # the admin never leaves, so the room stays
        assert len(room.members) <= 3
        assert {m.conn for m in room.members.values()} == set(room.by_conn)
        assert sorted(room.by_key.values()) == sorted(room.members)
