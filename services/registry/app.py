"""The registry's FastAPI app (SPEC §3): thin routes around `shared.subscriptions` and the
pure checks in `prefix.py`, `schemas.py` and `cursor.py`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

import nats.errors
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import Counter, Gauge
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.registry.cursor import CursorError, decode_cursor, encode_cursor
from services.registry.prefix import PrefixList, UrlError, parse_url
from services.registry.schemas import (
    Error,
    Room,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionList,
    SubscriptionOut,
    check_room,
)
from services.registry.settings import RegistrySettings
from shared.bus import Bus, BusHolder
from shared.service import health_router
from shared.subscriptions import (
    RegistryBusyError,
    Subscription,
    count_subscriptions,
    create_subscription,
    delete_subscription,
    get_subscription,
    list_page,
    sweep_orphans,
)

__all__ = ["MAX_BODY_BYTES", "create_app"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
COUNT_EVERY_S = 30.0  # the current-count gauge is at most this old
SWEEP_EVERY_S = 900.0  # orphan consumers left by failed creates are removed this often
LIST_LIMIT_MAX = 100

REGISTRATIONS = Counter(
    "registry_registrations_total",
    "Registration requests (REST and servlet) by outcome: created, existing, "
    "unauthorized_url, malformed, unavailable",
    ["outcome"],
)
DELETIONS = Counter("registry_deletions_total", "DELETE requests by outcome", ["outcome"])
CURRENT = Gauge(
    "registry_subscriptions",
    f"Registrations stored in JetStream (at most {COUNT_EVERY_S:.0f} s old)",
)

DESCRIPTION = """
Register URLs that receive a chat room's events as XML, one document per HTTP POST
(VolanoChat's *event notifications*): `create`, `enter`, `chat`, `ring`, `kick`, `exit`,
`delete`.

**Authentication.** Every route but `/healthz`, `/readyz`, `/metrics` and these docs needs
`Authorization: Bearer <token>`, a token from the operator's `REGISTRY_API_TOKENS`; else 401.

**Which URLs.** A callback URL must lie under one of the operator's `EVENT_CALLBACK_PREFIX`
prefixes (else 403 `unauthorized URL`). URLs are compared after normalisation, component by
component: same scheme, host and port, and a path under the prefix's path on a `/` boundary
(`http://h/cb` admits `http://h/cb/x`, not `http://h/cbx`). An empty whitelist admits nothing.

**In force at once.** A registration receives every event the chat service accepts for its
room after the 201 (or 200) answer, including that room's `create` if it does not exist yet.

**Idempotent.** Registering the same room and URL again answers 200 with the existing
registration (without its secret). The id is derived from room and URL.

**Ended by the callback.** A callback that answers anything but 200, or does not answer for
`DISPATCH_RETRY_WINDOW_S`, is unregistered: `GET` on it then answers 404.

**Signed.** Each POST carries Standard Webhooks headers (`webhook-id`, `webhook-timestamp`,
`webhook-signature`), signed with the registration's `secret`, shown once in the 201 answer.

**Errors.** 422 bodies are `{"detail": [{"loc", "msg", "type"}...]}`; every other error is
`{"detail": "..."}`. 503 means NATS JetStream, where registrations live, cannot be reached
right now: nothing was changed, retry later.
"""

_bearer = HTTPBearer(
    auto_error=False, description="one of the operator's REGISTRY_API_TOKENS", scheme_name="token"
)


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def authorise(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Bearer token check, in constant time against every configured token (hashed first, so
    neither a token's length nor which one matched shows in the timing)."""
    if not _token_ok(request, credentials.credentials if credentials else ""):
        raise HTTPException(401, UNAUTHORISED_DETAIL, headers={"WWW-Authenticate": "Bearer"})


UNAUTHORISED_DETAIL = "missing or wrong bearer token"


def _token_ok(request: Request, given_token: str) -> bool:
    tokens: list[bytes] = request.app.state.token_digests
    if not tokens:
        return True  # REGISTRY_ALLOW_NO_AUTH=true
    given = _digest(given_token.encode())
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given, token)
    return matched


def _header_token_ok(request: Request) -> bool:
    """The token check for answers made before the route's dependencies ran: FastAPI parses
    the JSON body first, and a stranger must get 401, not a critique of its JSON."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return _token_ok(request, token.strip() if scheme.lower() == "bearer" else "")


def _unauthorised() -> JSONResponse:
    return JSONResponse(
        {"detail": UNAUTHORISED_DETAIL}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
    )


def current_bus(request: Request) -> Bus:
    holder: BusHolder = request.app.state.holder
    bus = holder.bus
    if bus is None or not bus.connected:
        raise HTTPException(503, "NATS is unavailable", headers={"Retry-After": "1"})
    return bus


SubId = Annotated[
    str,
    Path(
        description="the `id` the registration answered",
        examples=["sub_3qbmd2nuzvrhahc5ojlcfk4b"],
    ),
]

Auth = Depends(authorise)
BusDep = Annotated[Bus, Depends(current_bus)]


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413 before any route sees it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await self._refuse(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body is larger than {self.limit} bytes"}, status_code=413
        )
        await response(scope, receive, send)


def _out(sub: Subscription) -> SubscriptionOut:
    return SubscriptionOut(id=sub.id, room=sub.room, url=sub.url, created_at=sub.created_at)


def _created(sub: Subscription) -> SubscriptionCreated:
    return SubscriptionCreated(
        id=sub.id, room=sub.room, url=sub.url, secret=sub.secret, created_at=sub.created_at
    )


def _printable(value: Any) -> Any:
    """Strings made encodable as UTF-8 (a lone surrogate becomes "?"); other values as they are."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


_SUB_ID = re.compile(r"sub_[a-z2-7]{24}")


def _valid_id(sub_id: str) -> bool:
    """The shape `subscription_id` makes (lower-case base32); anything else is simply 404."""
    return _SUB_ID.fullmatch(sub_id) is not None


def _error(description: str, example: str) -> dict[str, Any]:
    return {
        "model": Error,
        "description": description,
        "content": {"application/json": {"example": {"detail": example}}},
    }


UNAUTHORISED: dict[int | str, dict[str, Any]] = {
    401: _error("no or wrong bearer token", "missing or wrong bearer token")
}
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: _error("NATS JetStream unreachable; nothing changed", "NATS is unavailable")
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: _error("no such subscription (never made, deleted, or ended)", "no such subscription")
}


class Maintenance:
    """Background upkeep: the current-count gauge, and the sweep of orphans."""

    def __init__(self, holder: BusHolder) -> None:
        self.holder = holder
        self.changed = asyncio.Event()
        self.stopping = False

    async def stop(self, task: asyncio.Task[None]) -> None:
        """Cancel until it is done: on 3.11, a `wait_for` inside nats-py can swallow one."""
        self.stopping = True
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.05)

    async def run(self) -> None:
        bus = await self.holder.wait()
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        while not self.stopping:
            try:
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + SWEEP_EVERY_S
                    removed = await sweep_orphans(bus)
                    if removed:
                        log.info("removed %d orphans of failed registrations", removed)
                CURRENT.set(await count_subscriptions(bus))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("registry upkeep failed: %s", exc)
            self.changed.clear()
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(COUNT_EVERY_S):
                    await self.changed.wait()
            await asyncio.sleep(1.0)  # at most one count a second, however busy


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    settings = settings or RegistrySettings()
    settings.check()
    holder = BusHolder(settings, "registry")
    prefixes: PrefixList = settings.prefixes()
    maintenance = Maintenance(holder)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder.start()
        task = asyncio.create_task(maintenance.run(), name="registry-upkeep")
        yield
        await maintenance.stop(task)
        await holder.close()

    app = FastAPI(
        title="Volano event registry",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "subscriptions", "description": "Register and unregister callbacks."},
            {"name": "VolanoChat", "description": "The classic servlet call, unchanged."},
            {"name": "operations", "description": "Health and metrics, without a token."},
        ],
    )
    app.state.holder = holder
    app.state.token_digests = [_digest(t.encode()) for t in settings.tokens()]
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.include_router(health_router(holder.ready))

    @app.exception_handler(nats.errors.Error)
    @app.exception_handler(RegistryBusyError)
    @app.exception_handler(TimeoutError)
    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("NATS unavailable for %s %s: %r", request.method, request.url.path, exc)
        if (request.method, request.url.path) in (
            ("POST", "/v1/subscriptions"),
            ("GET", "/servlet/register"),
        ):
            REGISTRATIONS.labels("unavailable").inc()
        detail = "NATS is unavailable"
        if isinstance(exc, RegistryBusyError):
            detail = "another registry is changing this subscription; retry"
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "1"})

    default_validation_handler = app.exception_handlers[RequestValidationError]
    default_http_handler = app.exception_handlers[StarletteHTTPException]

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: Exception) -> Response:
        """FastAPI answers 400 to a body it cannot decode (not UTF-8); SPEC §3 says 422."""
        if isinstance(exc, StarletteHTTPException) and exc.status_code == 400:
            if not _header_token_ok(request):
                return _unauthorised()
            REGISTRATIONS.labels("malformed").inc()
            return JSONResponse(
                {
                    "detail": [
                        {
                            "loc": ["body"],
                            "msg": "body is not valid JSON text (UTF-8)",
                            "type": "json_invalid",
                        }
                    ]
                },
                status_code=422,
            )
        response: Response = await default_http_handler(request, exc)  # type: ignore[misc]
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: Exception) -> Response:
        """FastAPI's 422 shape, without echoing the input: it may be large, and a lone
        surrogate in it cannot even be encoded (FastAPI's own handler would answer 500)."""
        if not _header_token_ok(request):
            return _unauthorised()
        if request.method == "POST" and request.url.path == "/v1/subscriptions":
            REGISTRATIONS.labels("malformed").inc()
        if not isinstance(exc, RequestValidationError):  # pragma: no cover
            response: Response = await default_validation_handler(request, exc)  # type: ignore[misc]
            return response
        errors = [
            {
                "loc": [_printable(part) for part in error.get("loc", ())],
                "msg": _printable(error.get("msg", "")),
                "type": _printable(error.get("type", "")),
            }
            for error in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    def registered(created: bool) -> None:
        REGISTRATIONS.labels("created" if created else "existing").inc()
        if created:
            maintenance.changed.set()

    @app.post(
        "/v1/subscriptions",
        tags=["subscriptions"],
        summary="Register a callback URL for a room's events",
        status_code=201,
        response_model=SubscriptionCreated,
        dependencies=[Auth],
        responses={
            200: {
                "model": SubscriptionOut,
                "description": "This room and URL were registered already: the existing "
                "subscription, without its secret",
            },
            201: {"description": "Registered; the answer holds the signing secret, only now"},
            403: _error("no EVENT_CALLBACK_PREFIX admits this URL", "unauthorized URL"),
            413: _error("body over 16 KiB", "request body is larger than 16384 bytes"),
            **UNAUTHORISED,
            **UNAVAILABLE,
        },
    )
    async def register(body: SubscriptionCreate, nats_: BusDep) -> Response:
        """From the moment this answers 201 (or 200), every event the chat service accepts for
        the room reaches the URL, in order. Malformed input gets 422 and changes nothing."""
        if not prefixes.admits(body.url):
            REGISTRATIONS.labels("unauthorized_url").inc()
            raise HTTPException(403, "unauthorized URL")
        sub, created = await create_subscription(nats_, body.room, body.url, settings.nats_replicas)
        registered(created)
        if created:
            return JSONResponse(_created(sub).model_dump(), status_code=201)
        return JSONResponse(_out(sub).model_dump(), status_code=200)

    @app.get(
        "/v1/subscriptions",
        tags=["subscriptions"],
        summary="List subscriptions, oldest first, a page at a time",
        response_model=SubscriptionList,
        dependencies=[Auth],
        responses={**UNAUTHORISED, **UNAVAILABLE},
    )
    async def list_(
        nats_: BusDep,
        room: Annotated[
            Room | None, Query(description="only this room's subscriptions; all if absent")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=LIST_LIMIT_MAX, description="page size, 1-100")] = 50,
        cursor: Annotated[
            str | None,
            Query(
                max_length=200,
                description="the `next` of the previous page (same `room`); absent for the first",
            ),
        ] = None,
    ) -> SubscriptionList:
        """Secrets are never listed. Pages are stable: walking them with `next` yields every
        subscription that existed throughout exactly once; ones created meanwhile come last.
        A page may hold fewer than `limit` items and still have a `next`."""
        start = 1
        if cursor is not None:
            try:
                start = decode_cursor(cursor, room)
            except CursorError as exc:
                raise RequestValidationError(
                    [{"loc": ("query", "cursor"), "msg": str(exc), "type": "value_error"}]
                ) from None
        page = await list_page(nats_, room, start, limit)
        next_ = None if page.next_seq is None else encode_cursor(page.next_seq, room)
        return SubscriptionList(items=[_out(s) for s in page.items], next=next_)

    @app.get(
        "/v1/subscriptions/{sub_id}",
        tags=["subscriptions"],
        summary="Fetch one subscription (without its secret)",
        response_model=SubscriptionOut,
        dependencies=[Auth],
        responses={**NOT_FOUND, **UNAUTHORISED, **UNAVAILABLE},
    )
    async def get(sub_id: SubId, nats_: BusDep) -> SubscriptionOut:
        """404 once a callback's answer (anything but 200) has ended it."""
        sub = await get_subscription(nats_, sub_id) if _valid_id(sub_id) else None
        if sub is None:
            raise HTTPException(404, "no such subscription")
        return _out(sub)

    @app.delete(
        "/v1/subscriptions/{sub_id}",
        tags=["subscriptions"],
        summary="Unregister",
        status_code=204,
        response_class=Response,
        dependencies=[Auth],
        responses={
            204: {"description": "Unregistered: no further event is sent to it"},
            **NOT_FOUND,
            **UNAUTHORISED,
            **UNAVAILABLE,
        },
    )
    async def delete(sub_id: SubId, nats_: BusDep) -> Response:
        """Its undelivered events are dropped. Registering the same room and URL again later
        gives the same id with a new secret."""
        if not _valid_id(sub_id) or not await delete_subscription(nats_, sub_id):
            DELETIONS.labels("not_found").inc()
            raise HTTPException(404, "no such subscription")
        DELETIONS.labels("deleted").inc()
        maintenance.changed.set()
        return Response(status_code=204)

    text = {"content": {"text/plain": {"schema": {"type": "string"}}}}

    @app.get(
        "/servlet/register",
        tags=["VolanoChat"],
        summary="VolanoChat-compatible registration",
        response_class=PlainTextResponse,
        dependencies=[Auth],
        responses={
            200: {"description": 'Registered (or registered already): the body is "\\n"', **text},
            400: {
                "description": "Refused, and why, as plain text: `no room name` (absent, "
                "empty, over 100 characters or with control characters), `no callback URL`, "
                "`malformed URL` or `unauthorized URL`",
                **text,
            },
            **UNAUTHORISED,
            **UNAVAILABLE,
        },
    )
    async def servlet_register(
        nats_: BusDep,
        room: Annotated[str | None, Query(description="room name")] = None,
        href: Annotated[str | None, Query(description="callback URL")] = None,
    ) -> PlainTextResponse:
        """VolanoChat's `/servlet/register?room=R&href=U`, with its plain-text answers. The same
        rules as `POST /v1/subscriptions`; the secret is not shown (the REST call shows it)."""
        try:
            room = check_room(room or "")
        except ValueError:
            return PlainTextResponse("no room name", status_code=400)
        if not href:
            return PlainTextResponse("no callback URL", status_code=400)
        try:
            url = parse_url(href)
        except UrlError:
            REGISTRATIONS.labels("malformed").inc()
            return PlainTextResponse("malformed URL", status_code=400)
        if not prefixes.admits(url):
            REGISTRATIONS.labels("unauthorized_url").inc()
            return PlainTextResponse("unauthorized URL", status_code=400)
        _, created = await create_subscription(nats_, room, str(url), settings.nats_replicas)
        registered(created)
        return PlainTextResponse("\n")

    return app
