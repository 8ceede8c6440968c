"""In-process registry apps (httpx.ASGITransport) against a real nats-server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import httpx
import pytest

from services.registry.app import create_app
from services.registry.settings import RegistrySettings
from shared.bus import Bus
from tests.conftest import NatsServer

TOKEN = "registry-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PREFIXES = "http://127.0.0.1:9000/events https://hooks.example.com"

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def make_client(nats_server: NatsServer) -> AsyncIterator[ClientFactory]:
    """`await make_client(**settings)`: a client of a fresh in-process registry app (lifespan
    run, NATS connected); `client.bus` is that app's bus."""
    async with AsyncExitStack() as stack:

        async def make(**overrides: str) -> httpx.AsyncClient:
            values = {
                "nats_url": nats_server.url,
                "registry_api_tokens": TOKEN,
                "event_callback_prefix": PREFIXES,
                **overrides,
            }
            app = create_app(RegistrySettings(**values))  # type: ignore[arg-type]
            await stack.enter_async_context(app.router.lifespan_context(app))
            bus: Bus = await app.state.holder.wait()
            client = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://registry", headers=AUTH
                )
            )
            client.bus = bus  # type: ignore[attr-defined]
            return client

        yield make


@pytest.fixture
async def client(make_client: ClientFactory) -> httpx.AsyncClient:
    return await make_client()
