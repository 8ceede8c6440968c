"""In-process registry apps (httpx.ASGITransport) against a real nats-server.

One nats-server serves a whole test module (starting one per test costs more than the tests);
each test starts from empty JetStream state: the stream and buckets are deleted first.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack

import httpx
import nats
import pytest
from nats.js.errors import NotFoundError

from services.registry.app import create_app
from services.registry.settings import RegistrySettings
from shared.attempts import ATTEMPTS_STREAM
from shared.bus import POSITIONS_BUCKET, SUBSCRIPTIONS_BUCKET, Bus
from shared.ended import ENDED_BUCKET
from shared.leases import REGISTRY_BUCKET
from shared.subjects import EVENTS_STREAM
from tests.conftest import NatsServer

TOKEN = "registry-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PREFIXES = "http://127.0.0.1:9000/events https://hooks.example.com"

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture(scope="module")
def module_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("nats") / "jetstream")
    server.start()
    yield server
    server.stop(signal.SIGKILL)


@pytest.fixture
async def clean_nats(module_nats: NatsServer) -> NatsServer:
    nc = await nats.connect(module_nats.url)
    try:
        js = nc.jetstream()
        buckets = (SUBSCRIPTIONS_BUCKET, POSITIONS_BUCKET, REGISTRY_BUCKET, ENDED_BUCKET)
        streams = (EVENTS_STREAM, ATTEMPTS_STREAM)
        for stream in (*streams, *(f"KV_{bucket}" for bucket in buckets)):
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(stream)
    finally:
        await nc.close()
    return module_nats


@pytest.fixture
async def make_client(clean_nats: NatsServer) -> AsyncIterator[ClientFactory]:
    """`await make_client(**settings)`: a client of a fresh in-process registry app (lifespan
    run, NATS connected); `client.bus` is that app's bus."""
    async with AsyncExitStack() as stack:

        async def make(**overrides: str) -> httpx.AsyncClient:
            values = {
                "nats_url": clean_nats.url,
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
