"""How the dispatcher POSTs: httpx's request and transport API, with a measured choice of
transport.

`docs/benchmarks.md` ("Dispatcher") has the figures behind the choices:

- The transport is our own (`transport.WireTransport`, `DISPATCH_HTTP_TRANSPORT=wire`): an
  asyncio protocol that writes one HTTP/1.1 request and reads one status. httpx's own transport
  (`DISPATCH_HTTP_TRANSPORT=httpx`) spends several times the CPU per request.
- `CallbackClient` hands an `httpx.Request` straight to the transport. `httpx.AsyncClient` would
  add, per request, an auth flow, redirect handling and a cookie jar — all of which a dispatcher
  must switch off anyway (redirects are never followed, and one callback's cookies must never
  reach another).
- HTTP/1.1 connections are kept alive and reused per origin (scheme, host, port), with no limit
  on their number: a pool limit would let hanging callbacks starve the others. A registration
  has at most one POST in flight, so it holds at most one connection.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping

import httpx

from services.dispatcher.guard import AddressGuard
from services.dispatcher.settings import DispatcherSettings
from services.dispatcher.transport import ANSWER_MAX_BYTES, WireTransport

__all__ = ["ANSWER_MAX_BYTES", "USER_AGENT", "CallbackClient", "NoAnswer", "http_client"]

USER_AGENT = "volano-dispatcher/0.1"


_parsed_url = functools.lru_cache(maxsize=4096)(httpx.URL)  # bounded: URLs come and go


def _why(exc: Exception, timeout_s: float) -> str:
    """What went wrong, as an attempt's `error` shows it."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g} s"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


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
                raise NoAnswer(_why(exc, self.timeout_s)) from exc
        return status

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def __aenter__(self) -> CallbackClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def http_client(settings: DispatcherSettings) -> CallbackClient:
    """The client of `DISPATCH_HTTP_TRANSPORT`, bounded by `DISPATCH_TIMEOUT_S`."""
    transport: httpx.AsyncBaseTransport
    if settings.dispatch_http_transport == "wire":
        guard = (
            AddressGuard(settings.allowed_subnets()) if settings.dispatch_block_private else None
        )
        transport = WireTransport(guard)
    else:
        limits = httpx.Limits(
            max_connections=None, max_keepalive_connections=1000, keepalive_expiry=30
        )
        transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    return CallbackClient(transport, settings.dispatch_timeout_s)
