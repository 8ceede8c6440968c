"""Member tokens and roles (docs/websocket.md)."""

from __future__ import annotations

import os
import subprocess
import sys

import jwt
import pytest

from services.chat.protocol import ChatError
from services.chat.settings import ChatSettings
from services.chat.token import (
    Identity,
    TokenError,
    can_kick,
    is_protected,
    member_identity,
    mint,
    verify,
)

KEY = "unit-test-key-0123456789-0123456789-xyz"


def test_mint_and_verify() -> None:
    identity = verify(mint("Ann", "monitor", KEY), KEY)
    assert (identity.name, identity.role) == ("Ann", "monitor")
    assert verify(mint("Bo", "member", KEY, ttl_s=None), KEY).role == "member"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        mint("Ann", "admin", "some-other-key-0123456789-0123456789"),
        mint("Ann", "admin", KEY, ttl_s=-5),
        jwt.encode({"sub": "Ann"}, KEY, algorithm="HS256"),  # no role
        jwt.encode({"role": "admin"}, KEY, algorithm="HS256"),  # no sub
        jwt.encode({"sub": "Ann", "role": "king"}, KEY, algorithm="HS256"),
        jwt.encode({"sub": " ", "role": "member"}, KEY, algorithm="HS256"),
        jwt.encode({"sub": "Ann\u0007", "role": "member"}, KEY, algorithm="HS256"),
        jwt.encode({"sub": "A\nnn", "role": "member"}, KEY, algorithm="HS256"),
        jwt.encode({"sub": "Ann", "role": "admin"}, KEY, algorithm="HS512"),
        jwt.encode({"sub": "Ann", "role": "admin"}, None, algorithm="none"),
        "\ud800",  # a lone surrogate: PyJWT raises UnicodeEncodeError on it
        mint("Ann", "admin", KEY) + "\udc80",
        "é.é.é",
        "\x00.\x00.\x00",
    ],
)
def test_refused_tokens(token: str) -> None:
    with pytest.raises(TokenError):
        verify(token, KEY)


def test_empty_secret_refuses_every_token() -> None:
    with pytest.raises(TokenError, match="no member tokens"):
        verify(mint("Ann", "admin", KEY), "")


def test_roles() -> None:
    assert [can_kick(r) for r in (None, "member", "monitor", "admin")] == [False, False, True, True]
    assert [is_protected(r) for r in (None, "member", "monitor", "admin")] == [
        False,
        False,
        True,
        True,
    ]


def test_placeholder_secret_refuses_to_start() -> None:
    with pytest.raises(SystemExit, match="placeholder"):
        ChatSettings(chat_jwt_secret="change-me-please").check()
    ChatSettings(chat_jwt_secret="").check()  # empty is allowed: no member tokens


@pytest.mark.parametrize("secret", ["x", "0123456789abcdef0123456789abcde", " " * 40 + "short"])
def test_a_secret_under_32_characters_refuses_to_start(secret: str) -> None:
    with pytest.raises(SystemExit, match="at least 32"):
        ChatSettings(chat_jwt_secret=secret).check()
    ChatSettings(chat_jwt_secret="0123456789abcdef0123456789abcdef").check()  # 32 is enough


def test_command_line_mints_a_token() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "services.chat.token", "Moe", "--role", "admin"],
        env={**os.environ, "CHAT_JWT_SECRET": KEY},
        capture_output=True,
        text=True,
        check=True,
    )
    identity = verify(out.stdout.strip(), KEY)
    assert (identity.name, identity.role) == ("Moe", "admin")
    missing = subprocess.run(
        [sys.executable, "-m", "services.chat.token", "Moe"],
        env={k: v for k, v in os.environ.items() if k != "CHAT_JWT_SECRET"},
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "CHAT_JWT_SECRET" in missing.stderr
    short = subprocess.run(
        [sys.executable, "-m", "services.chat.token", "Moe"],
        env={**os.environ, "CHAT_JWT_SECRET": "k"},
        capture_output=True,
        text=True,
    )
    assert short.returncode == 2 and "at least 32" in short.stderr and not short.stdout


@pytest.mark.parametrize(
    ("secret", "why"), [("change-me-in-production", "placeholder"), ("k", "at least 32")]
)
def test_chat_process_will_not_start_with_a_placeholder_or_short_secret(
    secret: str, why: str
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "services.chat"],
        env={**os.environ, "CHAT_JWT_SECRET": secret, "CHAT_PORT": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "CHAT_JWT_SECRET" in out.stderr and why in out.stderr


def test_a_member_name_over_the_limit_is_not_valid() -> None:
    assert verify(mint(" ann ", "member", KEY), KEY, name_max=3).name == "ann"
    with pytest.raises(TokenError, match="not a valid name"):
        verify(mint("annabel", "member", KEY), KEY, name_max=3)


def test_an_enters_token_proves_a_member_or_is_refused_saying_why() -> None:
    assert member_identity(None, KEY, 20) is None
    assert member_identity(mint("ann", "monitor", KEY), KEY, 20) == Identity("ann", "monitor")
    with pytest.raises(ChatError) as refused:
        member_identity("not.a.token", KEY, 20)
    assert refused.value.code == "not_allowed" and "not valid" in refused.value.message
