"""NATS_USER and NATS_PASSWORD (docs/operations.md, "NATS users"): both or neither, and never a
placeholder from deploy/k8s; `make run`'s generated passwords are ones nats-server reads as
strings; each service's user and inbox are its own."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from shared.bus import EVERYTHING, USES
from shared.nats_binary import NATS_USERS, credentials, new_passwords, password_variable
from shared.settings import CommonSettings


def test_anonymous_by_default() -> None:
    settings = CommonSettings()
    assert settings.nats_user == settings.nats_password == ""


@pytest.mark.parametrize(
    ("user", "password"), [("chat", ""), ("", "a-password"), ("registry", "change-me-nats")]
)
def test_a_user_needs_a_real_password_and_a_password_a_user(user: str, password: str) -> None:
    with pytest.raises(ValidationError, match="NATS_"):
        CommonSettings(nats_user=user, nats_password=password)


def test_both_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NATS_USER", "dispatcher")
    monkeypatch.setenv("NATS_PASSWORD", "pw0123")
    settings = CommonSettings()
    assert (settings.nats_user, settings.nats_password) == ("dispatcher", "pw0123")


def test_generated_passwords_start_with_letters_and_differ() -> None:
    """nats-server reads a bare `$VAR` value like 1234, 10k or true as a number, a size or a
    boolean, not as a password."""
    first, second = new_passwords(), new_passwords()
    assert set(first) == {password_variable(user) for user in NATS_USERS}
    assert all(re.fullmatch(r"pw[0-9a-f]{48}", value) for value in first.values())
    assert not set(first.values()) & set(second.values())
    assert credentials("chat", first) == {
        "NATS_USER": "chat",
        "NATS_PASSWORD": first["NATS_CHAT_PASSWORD"],
    }


def test_the_chat_makes_sure_of_no_registration_bucket_and_changes_no_stream() -> None:
    assert USES["chat"].buckets == () and not USES["chat"].manage
    assert USES["registry"] == USES["dispatcher"] == EVERYTHING
