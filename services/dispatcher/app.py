"""The dispatcher's FastAPI app: health and metrics around the delivery supervisor."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from services.dispatcher.assignment import new_replica_id
from services.dispatcher.http import http_client
from services.dispatcher.settings import DispatcherSettings
from services.dispatcher.supervisor import Supervisor
from shared.bus import BusHolder
from shared.service import health_router

__all__ = ["create_app"]


def create_app(settings: DispatcherSettings | None = None) -> FastAPI:
    settings = settings or DispatcherSettings()
    holder = BusHolder(settings, "dispatcher")
    replica_id = new_replica_id()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder.start()
        async with http_client(settings) as client:

            async def supervise() -> None:
                await Supervisor(await holder.wait(), client, settings, replica_id).run()

            task = asyncio.create_task(supervise(), name="supervisor")
            yield
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await holder.close()

    app = FastAPI(title="Volano event dispatcher", lifespan=lifespan)
    app.state.replica_id = replica_id
    app.include_router(health_router(holder.ready))
    return app
