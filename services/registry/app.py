"""The registry's FastAPI app, wired: settings, the NATS bus, upkeep, the routes and the error
answers. What each part does is in the module named for it (`deps`, `routes/`, `errors`,
`bodylimit`, `upkeep`, `metrics`, `openapi`); the contract is docs/registry-api.md."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from services.registry.bodylimit import MAX_BODY_BYTES, BodyLimit
from services.registry.deps import token_digests
from services.registry.errors import install_error_handlers
from services.registry.history import History
from services.registry.openapi import DESCRIPTION, TAGS, TITLE
from services.registry.routes import attempts, health, servlet, subscriptions
from services.registry.settings import RegistrySettings
from services.registry.upkeep import Upkeep
from shared.bus import BusHolder

__all__ = ["create_app"]


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    """The app for `settings` (default: from the environment); exits on settings that would
    serve the API to anyone or a whitelist that does not parse."""
    settings = settings or RegistrySettings()
    settings.check()
    holder = BusHolder(settings, "registry")
    upkeep = Upkeep(holder)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder.start()
        upkeep.start()
        yield
        await upkeep.stop()
        await holder.close()

    app = FastAPI(
        title=TITLE, version="1", description=DESCRIPTION, lifespan=lifespan, openapi_tags=TAGS
    )
    app.state.settings = settings
    app.state.holder = holder
    app.state.upkeep = upkeep
    app.state.history = History(settings.events_max_age_s, settings.nats_replicas)
    app.state.prefixes = settings.prefixes()
    app.state.token_digests = token_digests(settings.tokens())
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    install_error_handlers(app)
    app.include_router(health.router(holder))
    app.include_router(subscriptions.router)
    app.include_router(attempts.router)
    app.include_router(servlet.router)
    return app
