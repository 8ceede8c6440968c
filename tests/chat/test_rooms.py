"""Room membership and the events each request produces (no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.chat.protocol import ChatError
from services.chat.rooms import Rooms
from services.chat.token import Role
from shared.events import (
    ChatEvent,
    CreateEvent,
    DeleteEvent,
    EnterEvent,
    Event,
    ExitEvent,
    KickEvent,
    RingEvent,
)


def enter(rooms: Rooms, conn: str, room: str, user: str) -> list[Event]:
    events = rooms.plan_enter(conn, room, user, "", "non-member", "127.0.0.1")
    for e in events:
        rooms.apply(conn, e)
    return events


def test_dynamic_room_is_created_then_deleted_with_its_last_exit() -> None:
    rooms = Rooms(["Lobby"], dynamic=True, room_limit=25)
    assert enter(rooms, "c1", "Den", "alice") == [
        CreateEvent("Den"),
        EnterEvent("Den", "alice", "127.0.0.1", ""),
    ]
    assert enter(rooms, "c2", "Den", "bob") == [EnterEvent("Den", "bob", "127.0.0.1", "")]
    assert rooms.plan_chat("c1", "Den", "hi") == [ChatEvent("Den", "alice", "hi")]
    exit1 = rooms.plan_exit("c1", "Den")
    assert exit1 == [ExitEvent("Den", "alice")]
    rooms.apply("c1", exit1[0])
    assert rooms.plan_exit("c2", "Den") == [ExitEvent("Den", "bob"), DeleteEvent("Den")]


def test_permanent_room_is_never_created_nor_deleted() -> None:
    rooms = Rooms(["Lobby"], dynamic=True, room_limit=25)
    assert enter(rooms, "c1", "Lobby", "alice") == [EnterEvent("Lobby", "alice", "127.0.0.1", "")]
    assert rooms.plan_exit("c1", "Lobby") == [ExitEvent("Lobby", "alice")]


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
        rooms.plan_chat("c2", "Lobby", "hi")
    assert err.value.code == "not_in_room"
    rooms.room_limit = 5
    with pytest.raises(ChatError) as err:
        rooms.plan_enter("c2", "Lobby", "alice", "", "non-member", "h")
    assert err.value.code == "name_taken"


def staff(rooms: Rooms, conn: str, room: str, user: str, role: Role) -> None:
    for e in rooms.plan_enter(conn, room, user, "", "member", "10.0.0.1"):
        rooms.apply(conn, e, role)


def test_kicks() -> None:
    rooms = Rooms(["Lobby"], dynamic=True, room_limit=25)
    staff(rooms, "mod", "Den", "Mo", "monitor")
    enter(rooms, "c1", "Den", "bob")
    assert rooms.plan_kick("mod", "Den", "bob", "remove") == [
        KickEvent("Den", "Mo", "bob", "remove")
    ]
    assert rooms.plan_kick("mod", "Den", "bob", "disconnect") == [
        KickEvent("Den", "Mo", "bob", "disconnect"),
        ExitEvent("Den", "bob"),
    ]
    assert rooms.plan_kick("mod", "Den", "bob", "ban") == [
        KickEvent("Den", "Mo", "bob", "ban"),
        ExitEvent("Den", "bob"),
    ]
    rooms.apply("mod", KickEvent("Den", "Mo", "bob", "remove"))
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
    rooms.apply("m1", ExitEvent("Lobby", "Ann"))
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
    rooms.apply("m1", ExitEvent("Lobby", "ann"))
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
    rooms.apply("c1", ExitEvent("Lobby", "ann"))
    enter(rooms, "c2", "Lobby", alike)  # free once ann has left
    room = rooms.get("Lobby")
    assert room is not None and list(room.members) == [alike]


def test_ring() -> None:
    rooms = Rooms(["Lobby"], dynamic=True, room_limit=25)
    enter(rooms, "c1", "Lobby", "ann")
    enter(rooms, "c2", "Lobby", "bob")
    assert rooms.plan_ring("c1", "Lobby", "bob") == [RingEvent("Lobby", "ann", "bob")]
    with pytest.raises(ChatError) as err:
        rooms.plan_ring("c1", "Lobby", "carl")
    assert err.value.code == "not_in_room"


@given(st.lists(st.tuples(st.sampled_from("abcd"), st.sampled_from(["enter", "exit", "kick"]))))
def test_membership_stays_consistent(steps: list[tuple[str, str]]) -> None:
    rooms = Rooms([], dynamic=True, room_limit=3)
    staff(rooms, "mod", "R", "Mod", "admin")
    for user, action in steps:
        try:
            if action == "enter":
                events = rooms.plan_enter(user, "R", user, "", "non-member", "h")
            elif action == "exit":
                events = rooms.plan_exit(user, "R")
            else:
                events = rooms.plan_kick("mod", "R", user, "remove")
        except ChatError:
            continue
        for e in events:
            rooms.apply(user, e)
        room = rooms.get("R")
        assert room is not None  # the admin never leaves, so the room stays
        assert len(room.members) <= 3
        assert {m.conn for m in room.members.values()} == set(room.by_conn)
        assert sorted(room.by_key.values()) == sorted(room.members)
