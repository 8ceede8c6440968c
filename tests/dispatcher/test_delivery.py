"""Delivery decisions and Standard Webhooks signatures (SPEC §1, §2), no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from services.dispatcher.delivery import Outcome, backoff_delay, classify, sign, webhook_headers


@pytest.mark.parametrize("status", [201, 202, 204, 301, 302, 304, 400, 404, 410, 500, 503])
def test_every_status_but_200_refuses(status: int) -> None:
    assert classify(status) is Outcome.REFUSED


def test_200_delivers_and_no_answer_retries() -> None:
    assert classify(200) is Outcome.DELIVERED
    assert classify(None) is Outcome.UNREACHABLE


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(n, 0.5, 5) for n in range(6)] == [0.5, 1, 2, 4, 5, 5]
    assert backoff_delay(10_000, 0.5, 5) == 5


def test_signature_is_standard_webhooks() -> None:
    key = b"0123456789abcdef0123456789abcdef"
    secret = "whsec_" + base64.b64encode(key).decode()
    body = b"<create><room>R</room></create>\n"
    expected = base64.b64encode(
        hmac.new(key, b"msg_1.1700000000." + body, hashlib.sha256).digest()
    ).decode()
    assert sign(secret, "msg_1", 1700000000, body) == "v1," + expected
    headers = webhook_headers(secret, "msg_1", 1700000000, body)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["content-type"] == "application/xml; charset=utf-8"
