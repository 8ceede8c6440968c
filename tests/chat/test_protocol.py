"""Parsing client frames (docs/websocket.md), no I/O."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.chat.protocol import (
    ChatError,
    ChatRequest,
    EnterRequest,
    ExitRequest,
    KickRequest,
    Limits,
    RingRequest,
    error_frame,
    parse_request,
)

LIMITS = Limits()


def refused(frame: object, code: str = "bad_request") -> ChatError:
    text = frame if isinstance(frame, str) else json.dumps(frame)
    with pytest.raises(ChatError) as err:
        parse_request(text, LIMITS)
    assert err.value.code == code, err.value.message
    assert len(err.value.message) > 5
    return err.value


def test_every_op() -> None:
    assert parse_request(
        '{"op":"enter","room":" R ","user":" u ","profile":"p","id":1}', LIMITS
    ) == EnterRequest(1, "R", "u", "p", None)
    assert parse_request('{"op":"enter","room":"R","token":"t"}', LIMITS) == EnterRequest(
        None, "R", "", "", "t"
    )
    assert parse_request('{"op":"chat","room":"R","message":" hi "}', LIMITS) == ChatRequest(
        None, "R", " hi "
    )
    assert parse_request('{"op":"ring","room":"R","to":"u","id":"x"}', LIMITS) == RingRequest(
        "x", "R", "u"
    )
    assert parse_request('{"op":"kick","room":"R","to":"u","type":"ban"}', LIMITS) == KickRequest(
        None, "R", "u", "ban"
    )
    assert parse_request('{"op":"exit","room":"R"}', LIMITS) == ExitRequest(None, "R")


def test_refusals_keep_the_request_id() -> None:
    assert refused({"op": "chat", "room": "R", "id": 5}).request_id == 5
    assert refused({"op": "nope", "id": "a"}).request_id == "a"
    assert (
        refused({"op": "chat", "room": "R", "message": "m" * 401, "id": 2}, "too_long").request_id
        == 2
    )


@pytest.mark.parametrize(
    "frame",
    [
        "",
        "nope",
        "[]",
        "null",
        "{}",
        {"op": None},
        {"op": ["enter"]},
        {"op": "enter", "room": "R", "user": "u", "id": True},
        {"op": "enter", "room": "R", "user": "u", "id": 1.0},
        {"op": "enter", "room": "R", "user": "u", "id": {}},
        {"op": "enter", "room": "R"},
        {"op": "enter", "room": "R", "user": ""},
        {"op": "enter", "room": "R", "user": " \t "},
        {"op": "enter", "room": "R", "user": "a\nb"},
        {"op": "enter", "room": "R", "user": "a\u0085b"},
        {"op": "enter", "room": "R", "user": "a\ud800"},
        {"op": "enter", "room": "R", "user": "a\uffff"},
        {"op": "enter", "room": "R\x1b", "user": "u"},
        {"op": "enter", "room": "R", "user": "u", "token": 5},
        {"op": "enter", "room": "R", "user": "u", "profile": ["p"]},
        {"op": "chat", "room": "R"},
        {"op": "chat", "room": "R", "message": 1},
        {"op": "ring", "room": "R"},
        {"op": "kick", "room": "R", "to": "u"},
        {"op": "kick", "room": "R", "to": "u", "type": "eject"},
        {"op": "exit"},
        '{"op": "exit", "room": "R", "id": ' + "1" * 5000 + "}",
        "[" * 100000,
    ],
)
def test_bad_request(frame: object) -> None:
    refused(frame)


def test_limits() -> None:
    assert parse_request(
        json.dumps({"op": "enter", "room": "r" * 100, "user": "u" * 20, "profile": "p" * 400}),
        LIMITS,
    )
    for frame in (
        {"op": "enter", "room": "r" * 101, "user": "u"},
        {"op": "enter", "room": "R", "user": "u" * 21},
        {"op": "enter", "room": "R", "user": "u", "profile": "p" * 401},
        {"op": "chat", "room": "R", "message": "m" * 401},
        {"op": "ring", "room": "R", "to": "u" * 21},
    ):
        refused(frame, "too_long")
    # trimmed before counting
    assert parse_request(
        json.dumps({"op": "enter", "room": "R", "user": f"  {'u' * 20}  "}), LIMITS
    )


def test_error_frame() -> None:
    assert json.loads(error_frame(ChatError("banned", "go away", 3))) == {
        "op": "error",
        "code": "banned",
        "message": "go away",
        "id": 3,
    }
    assert "id" not in json.loads(error_frame(ChatError("banned", "go away")))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)


@given(
    op=st.sampled_from(["enter", "chat", "ring", "kick", "exit", "x"]) | json_values,
    rest=st.dictionaries(
        st.sampled_from(["id", "room", "user", "to", "message", "profile", "token", "type"]),
        json_values,
    ),
)
def test_any_object_is_parsed_or_refused_with_a_code(op: object, rest: dict[str, object]) -> None:
    try:
        request = parse_request(json.dumps({"op": op, **rest}), LIMITS)
    except ChatError as error:
        assert error.code in ("bad_request", "too_long")
        return
    for name in ("room", "user", "to"):
        value = getattr(request, name, None)
        if value:
            assert value == value.strip()
            assert not any(unicodedata.category(c) in ("Cc", "Cs") for c in value)


@given(st.text())
def test_any_text_is_parsed_or_refused(text: str) -> None:
    try:
        parse_request(text, LIMITS)
    except ChatError as error:
        assert error.code in ("bad_request", "too_long")


def test_enter_since_is_a_non_negative_integer() -> None:
    enter = '{"op":"enter","room":"R","user":"u",'
    assert parse_request(enter + '"since":0}', LIMITS).since == 0  # type: ignore[union-attr]
    assert parse_request(enter + '"since":41}', LIMITS).since == 41  # type: ignore[union-attr]
    assert parse_request(enter + '"since":null}', LIMITS).since is None  # type: ignore[union-attr]
    for bad in ("-1", '"5"', "1.5", "true", "[]"):
        error = refused(enter + f'"since":{bad},"id":3}}')
        assert error.request_id == 3 and "since" in error.message
