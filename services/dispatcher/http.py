"""The HTTP client the workers POST with (httpx's API, a measured choice of transport).

`docs/benchmarks.md` ("Dispatcher") has the figures behind the default: httpx's own transport
spends more CPU per request than aiohttp's, through `httpx-aiohttp`'s `AiohttpTransport`. Both
keep HTTP/1.1 connections alive and reuse them per callback origin (scheme, host, port); a
registration has at most one POST in flight, so it needs at most one connection.
"""

from __future__ import annotations

from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from services.dispatcher.settings import DispatcherSettings

__all__ = ["USER_AGENT", "http_client"]

USER_AGENT = "volano-dispatcher/0.1"


def http_client(settings: DispatcherSettings) -> httpx.AsyncClient:
    """Redirects are never followed (SPEC §2): a 3xx is an answer that ends the registration."""
    timeout = httpx.Timeout(settings.dispatch_timeout_s)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=1000, keepalive_expiry=30)
    transport: httpx.AsyncBaseTransport
    if settings.dispatch_http_transport == "aiohttp":
        import aiohttp
        from httpx_aiohttp import AiohttpTransport

        def session() -> aiohttp.ClientSession:
            # No connection limit: a hanging callback must never wait for a pool slot that
            # another registration needs (aiohttp's default is 100 connections in all).
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=30)
            return aiohttp.ClientSession(connector=connector, trust_env=False)

        transport = AiohttpTransport(limits=limits, trust_env=False, client=session)
    else:
        transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    return httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        timeout=timeout,
        headers={"user-agent": USER_AGENT},
        # No cookie jar: a callback's Set-Cookie must never reach another callback's POSTs.
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        trust_env=False,
    )
