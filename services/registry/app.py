"""The registry's FastAPI app (SPEC §3)."""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import Counter, Gauge

from services.registry.prefix import PrefixList, UrlError
from services.registry.schemas import SubscriptionCreate, SubscriptionList, SubscriptionOut
from services.registry.settings import RegistrySettings
from shared.bus import Bus, BusHolder
from shared.service import health_router
from shared.subscriptions import (
    Subscription,
    create_subscription,
    delete_subscription,
    get_subscription,
    list_subscriptions,
)

__all__ = ["create_app"]

REGISTRATIONS = Counter(
    "registry_registrations_total", "Registration attempts by outcome", ["outcome"]
)
CURRENT = Gauge("registry_subscriptions", "Subscriptions listed by the last full listing")


_bearer = HTTPBearer(auto_error=False, description="one of REGISTRY_API_TOKENS")


def _out(sub: Subscription, with_secret: bool) -> SubscriptionOut:
    return SubscriptionOut(
        id=sub.id,
        room=sub.room,
        url=sub.url,
        secret=sub.secret if with_secret else None,
        created_at=sub.created_at,
    )


def authorise(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Bearer token check, in constant time against every configured token."""
    tokens: list[bytes] = request.app.state.tokens
    if not tokens:
        return
    given = credentials.credentials.encode() if credentials else b""
    if not any(hmac.compare_digest(given, t) for t in tokens):
        raise HTTPException(
            401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
        )


def current_bus(request: Request) -> Bus:
    holder: BusHolder = request.app.state.holder
    bus = holder.bus
    if bus is None or not bus.connected:
        raise HTTPException(503, "NATS is unavailable")
    return bus


Auth = Depends(authorise)
BusDep = Annotated[Bus, Depends(current_bus)]


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    settings = settings or RegistrySettings()
    settings.check()
    holder = BusHolder(settings, "registry")
    prefixes = PrefixList(settings.event_callback_prefix)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder.start()
        yield
        await holder.close()

    app = FastAPI(
        title="Volano event registry",
        description="Register URLs that receive a room's events as XML "
        "(VolanoChat event notifications).",
        lifespan=lifespan,
    )
    app.state.holder = holder
    app.state.tokens = [t.encode() for t in settings.tokens()]
    app.include_router(health_router(holder.ready))

    def check_url(url: str) -> None:
        try:
            admitted = prefixes.admits(url)
        except UrlError as exc:
            raise HTTPException(422, str(exc)) from None
        if not admitted:
            raise HTTPException(403, "unauthorized URL")

    @app.post(
        "/v1/subscriptions",
        status_code=201,
        response_model=SubscriptionOut,
        dependencies=[Auth],
        responses={200: {"model": SubscriptionOut}},
    )
    async def register(
        body: SubscriptionCreate, response: Response, nats: BusDep
    ) -> SubscriptionOut:
        check_url(body.url)
        sub, created = await create_subscription(nats, body.room, body.url, settings.nats_replicas)
        REGISTRATIONS.labels("created" if created else "existing").inc()
        if not created:
            response.status_code = 200
        return _out(sub, with_secret=created)

    @app.get("/v1/subscriptions", response_model=SubscriptionList, dependencies=[Auth])
    async def list_(
        nats: BusDep,
        room: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    ) -> SubscriptionList:
        subs = await list_subscriptions(nats)
        if room is None:
            CURRENT.set(len(subs))
        items = [_out(s, False) for s in subs if room is None or s.room == room]
        return SubscriptionList(items=items, next=None)

    @app.get(
        "/v1/subscriptions/{sub_id}",
        response_model=SubscriptionOut,
        dependencies=[Auth],
        responses={404: {}},
    )
    async def get(sub_id: str, nats: BusDep) -> SubscriptionOut:
        sub = await get_subscription(nats, sub_id) if _valid_id(sub_id) else None
        if sub is None:
            raise HTTPException(404, "no such subscription")
        return _out(sub, False)

    @app.delete(
        "/v1/subscriptions/{sub_id}", status_code=204, dependencies=[Auth], responses={404: {}}
    )
    async def delete(sub_id: str, nats: BusDep) -> Response:
        if not _valid_id(sub_id) or not await delete_subscription(nats, sub_id):
            raise HTTPException(404, "no such subscription")
        return Response(status_code=204)

    @app.get("/servlet/register", response_class=PlainTextResponse, dependencies=[Auth])
    async def servlet_register(request: Request, nats: BusDep) -> PlainTextResponse:
        room = request.query_params.get("room", "")
        href = request.query_params.get("href", "")
        if not room:
            return PlainTextResponse("no room name", status_code=400)
        if not href:
            return PlainTextResponse("no callback URL", status_code=400)
        try:
            admitted = prefixes.admits(href)
        except UrlError:
            return PlainTextResponse("malformed URL", status_code=400)
        if not admitted:
            return PlainTextResponse("unauthorized URL", status_code=400)
        _, created = await create_subscription(nats, room, href, settings.nats_replicas)
        REGISTRATIONS.labels("created" if created else "existing").inc()
        return PlainTextResponse("\n")

    return app


def _valid_id(sub_id: str) -> bool:
    return sub_id.startswith("sub_") and sub_id[4:].isalnum() and len(sub_id) < 64
