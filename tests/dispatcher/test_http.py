"""The dispatcher's HTTP client on httpx's MockTransport: statuses, redirects, answers."""

from __future__ import annotations

import httpx
import pytest

from services.dispatcher.http import ANSWER_MAX_BYTES, USER_AGENT, CallbackClient, NoAnswer

URL = "http://hooks.example/events?x=1"


def client_for(handler: object) -> tuple[CallbackClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)  # type: ignore[operator, no-any-return]

    return CallbackClient(httpx.MockTransport(record), timeout_s=2), seen


async def test_posts_the_body_and_headers_and_returns_the_status() -> None:
    client, seen = client_for(lambda r: httpx.Response(204))
    assert await client.post(URL, b"<x/>", {"webhook-id": "a_1"}) == 204
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.content == b"<x/>"
    assert request.headers["webhook-id"] == "a_1"
    assert request.headers["user-agent"] == USER_AGENT
    assert request.headers["host"] == "hooks.example"


async def test_a_redirect_is_an_answer_and_is_not_followed() -> None:
    client, seen = client_for(
        lambda r: httpx.Response(302, headers={"location": "http://elsewhere.example/"})
    )
    assert await client.post(URL, b"<x/>", {}) == 302
    assert len(seen) == 1


async def test_a_huge_answer_is_not_read_whole() -> None:
    chunks_read = 0

    async def body() -> object:
        nonlocal chunks_read
        for _ in range(10_000):
            chunks_read += 1
            yield b"x" * 1024

    client, _ = client_for(lambda r: httpx.Response(200, content=body()))
    assert await client.post(URL, b"<x/>", {}) == 200
    assert chunks_read <= ANSWER_MAX_BYTES // 1024 + 2


async def test_no_answer_is_no_answer() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client, _ = client_for(refuse)
    with pytest.raises(NoAnswer, match="ConnectError"):
        await client.post(URL, b"<x/>", {})
