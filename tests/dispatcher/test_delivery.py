"""Delivery decisions and Standard Webhooks signatures (docs/callbacks.md), no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from services.dispatcher.delivery import (
    Outcome,
    RetryPolicy,
    backoff_delay,
    classify,
    sign,
    verify,
    webhook_headers,
)
from shared.ids import webhook_id

KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
BODY = b"<create><room>R</room></create>\n"


@pytest.mark.parametrize("status", [201, 202, 204, 301, 302, 304, 307, 400, 404, 410, 500, 503])
def test_every_status_but_200_refuses(status: int) -> None:
    assert classify(status) is Outcome.REFUSED


def test_200_delivers_and_no_answer_retries() -> None:
    assert classify(200) is Outcome.DELIVERED
    assert classify(None) is Outcome.UNREACHABLE


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(n, 0.5, 5) for n in range(6)] == [0.5, 1, 2, 4, 5, 5]
    assert backoff_delay(10_000, 0.5, 5) == 5


def test_retries_stay_within_the_window_and_the_last_lands_on_its_end() -> None:
    policy = RetryPolicy(window_s=10, initial_s=1, max_s=4)
    now, attempt, starts = 100.0, 0, [100.0]
    while (delay := policy.next_delay(attempt, 100.0, now)) is not None:
        now += delay
        attempt += 1
        starts.append(now)
    assert starts == [100, 101, 103, 107, 110]
    assert policy.next_delay(0, 100.0, 110.0) is None


def test_a_zero_window_never_retries() -> None:
    assert RetryPolicy(0, 1, 4).next_delay(0, 5.0, 5.0) is None


def test_webhook_id_depends_only_on_subscription_and_sequence() -> None:
    assert webhook_id("sub_x", 42) == webhook_id("sub_x", 42) == "sub_x_42"
    assert webhook_id("sub_x", 42) != webhook_id("sub_x", 43)
    assert webhook_id("sub_x", 42) != webhook_id("sub_y", 42)


def test_signature_is_standard_webhooks() -> None:
    expected = base64.b64encode(
        hmac.new(KEY, b"msg_1.1700000000." + BODY, hashlib.sha256).digest()
    ).decode()
    assert sign(SECRET, "msg_1", 1700000000, BODY) == "v1," + expected
    headers = webhook_headers(SECRET, "msg_1", 1700000000, BODY)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["content-type"] == "application/xml; charset=utf-8"


def test_a_receiver_verifies_what_was_signed_and_nothing_else() -> None:
    headers = webhook_headers(SECRET, "msg_1", 1700000000, BODY)
    assert verify(SECRET, headers, BODY, now=1700000010)
    assert not verify(SECRET, headers, BODY + b" ", now=1700000010)
    assert not verify(SECRET, {**headers, "webhook-id": "msg_2"}, BODY, now=1700000010)
    assert not verify(SECRET, headers, BODY, now=1700000000 + 301)  # too old: a replay
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    assert not verify(other, headers, BODY, now=1700000010)
    rotated = {**headers, "webhook-signature": "v1,AAAA " + headers["webhook-signature"]}
    assert verify(SECRET, rotated, BODY, now=1700000010)
    assert not verify(SECRET, {"webhook-id": "msg_1"}, BODY, now=1700000010)
