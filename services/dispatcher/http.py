"""How the workers POST: httpx's request and transport API, with a measured choice of transport.

`docs/benchmarks.md` ("Dispatcher") has the figures behind the choices:

- The transport is `httpx-aiohttp`'s `AiohttpTransport` by default; httpx's own
  (`DISPATCH_HTTP_TRANSPORT=httpx`) spends about twice the CPU per request, and far more with
  many callbacks at once.
- `CallbackClient` hands an `httpx.Request` straight to the transport. `httpx.AsyncClient` would
  add, per request, an auth flow, redirect handling and a cookie jar — all of which a dispatcher
  must switch off anyway (redirects are never followed, and one callback's cookies must never
  reach another) — and costs about 0.3 ms of CPU per request on our machine for them.
- HTTP/1.1 connections are kept alive and reused per origin (scheme, host, port), with no limit
  on their number: a pool limit would let hanging callbacks starve the others. A registration
  has at most one POST in flight, so it holds at most one connection.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping

import httpx

from services.dispatcher.settings import DispatcherSettings

__all__ = ["ANSWER_MAX_BYTES", "USER_AGENT", "CallbackClient", "NoAnswer", "http_client"]

USER_AGENT = "volano-dispatcher/0.1"
ANSWER_MAX_BYTES = 64 * 1024  # of a callback's answer body, read and dropped


_parsed_url = functools.lru_cache(maxsize=4096)(httpx.URL)  # bounded: URLs come and go


class NoAnswer(Exception):
    """No HTTP status came back: refused, reset, timed out, or not HTTP."""


class CallbackClient:
    """POSTs a body and returns the answer's status; never follows a redirect."""

    def __init__(self, transport: httpx.AsyncBaseTransport, timeout_s: float) -> None:
        self.transport = transport
        self.timeout_s = timeout_s
        self._timeouts = httpx.Timeout(timeout_s).as_dict()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """The status of the answer. At most ANSWER_MAX_BYTES of its body are read (and
        dropped), so no callback can make the dispatcher hold a large answer in memory; the
        whole exchange is bounded by `timeout_s`. Raises NoAnswer."""
        request = httpx.Request(
            "POST",
            _parsed_url(url),
            content=body,
            headers={"user-agent": USER_AGENT, **headers},
            extensions={"timeout": self._timeouts},
        )
        status: int | None = None
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self.transport.handle_async_request(request)
                status = response.status_code
                try:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read > ANSWER_MAX_BYTES:
                            break  # the connection is closed rather than reused
                finally:
                    await response.aclose()
        except Exception as exc:
            if status is None:
                raise NoAnswer(f"{type(exc).__name__}: {exc}") from exc
        return status

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def __aenter__(self) -> CallbackClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def http_client(settings: DispatcherSettings) -> CallbackClient:
    """The client of `DISPATCH_HTTP_TRANSPORT`, bounded by `DISPATCH_TIMEOUT_S`."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=1000, keepalive_expiry=30)
    transport: httpx.AsyncBaseTransport
    if settings.dispatch_http_transport == "aiohttp":
        import aiohttp
        from httpx_aiohttp import AiohttpTransport

        def session() -> aiohttp.ClientSession:
            # No connection limit (aiohttp's default is 100 in all), no cookie jar.
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=30)
            return aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
            )

        transport = AiohttpTransport(limits=limits, trust_env=False, client=session)
    else:
        transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    return CallbackClient(transport, settings.dispatch_timeout_s)
