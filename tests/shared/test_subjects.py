"""Room names to subject tokens (docs/operations.md): injective and subject-safe, for any name."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.subjects import event_subject, room_token

names = st.text(st.characters(codec=None), min_size=1, max_size=100)


@given(names)
def test_token_is_subject_safe(room: str) -> None:
    token = room_token(room)
    assert token
    assert not any(c in token for c in ".*>") and not any(c.isspace() for c in token)
    assert token.isascii()


def decoded(token: str) -> str:
    """The test's own inverse of `room_token` (the services need none): that there is one is
    what makes the mapping injective."""
    assert re.fullmatch(r"(?:[A-Za-z0-9-]|_[0-9A-F]{2})+", token), token
    data = bytearray()
    for kept, escaped in re.findall(r"([A-Za-z0-9-])|_([0-9A-F]{2})", token):
        data += kept.encode() if kept else bytes.fromhex(escaped)
    return data.decode("utf-8", "surrogatepass")


@given(names)
def test_token_decodes_to_its_room(room: str) -> None:
    assert decoded(room_token(room)) == room


@given(names, names)
def test_different_rooms_never_share_a_token(a: str, b: str) -> None:
    if a != b:
        assert room_token(a) != room_token(b)


@pytest.mark.parametrize(
    ("room", "token"),
    [
        ("Lobby", "Lobby"),
        ("Event Room", "Event_20Room"),
        ("a.>", "a_2E_3E"),
        ("*", "_2A"),
        ("_2A", "_5F2A"),
        ("é", "_C3_A9"),
    ],
)
def test_examples(room: str, token: str) -> None:
    assert room_token(room) == token


def test_wildcard_rooms_stay_on_their_own_subject() -> None:
    assert event_subject("a.>", "chat") == "volano.events.a_2E_3E.chat"
    assert event_subject("*", "enter") == "volano.events._2A.enter"


def test_empty_room_has_no_token() -> None:
    with pytest.raises(ValueError):
        room_token("")
