"""Room membership and the events each request produces (no I/O)."""

from __future__ import annotations

import pytest

from services.chat.protocol import ChatError
from services.chat.rooms import Rooms
from shared.events import ChatEvent, CreateEvent, DeleteEvent, EnterEvent, Event, ExitEvent


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
