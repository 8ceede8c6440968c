"""The dispatcher's FastAPI app: health and metrics around the delivery supervisor."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from services.dispatcher.settings import DispatcherSettings
from services.dispatcher.supervisor import Supervisor
from shared.bus import BusHolder
from shared.service import health_router

__all__ = ["create_app"]


def http_client(settings: DispatcherSettings) -> httpx.AsyncClient:
    """Redirects are never followed (SPEC §2): a 3xx is an answer that ends the registration."""
    return httpx.AsyncClient(
        follow_redirects=False,
        timeout=httpx.Timeout(settings.dispatch_timeout_s),
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=200),
        headers={"user-agent": "volano-dispatcher/0.1"},
    )


def create_app(settings: DispatcherSettings | None = None) -> FastAPI:
    settings = settings or DispatcherSettings()
    holder = BusHolder(settings, "dispatcher")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder.start()
        async with http_client(settings) as client:

            async def supervise() -> None:
                await Supervisor(await holder.wait(), client, settings).run()

            task = asyncio.create_task(supervise(), name="supervisor")
            yield
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await holder.close()

    app = FastAPI(title="Volano event dispatcher", lifespan=lifespan)
    app.include_router(health_router(holder.ready))
    return app
