"""`/servlet/register`: VolanoChat's registration call, with its plain-text answers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from services.registry.deps import Auth, RegistrarDep
from services.registry.metrics import REGISTRATIONS
from services.registry.openapi import TEXT, UNAUTHORISED, UNAVAILABLE
from services.registry.prefix import UrlError, parse_url
from services.registry.schemas import check_room

__all__ = ["router"]

router = APIRouter(tags=["VolanoChat"], dependencies=[Auth])


@router.get(
    "/servlet/register",
    summary="VolanoChat-compatible registration",
    response_class=PlainTextResponse,
    responses={
        200: {"description": 'Registered (or registered already): the body is "\\n"', **TEXT},
        400: {
            "description": "Refused, and why, as plain text: `no room name` (absent, "
            "empty, over 100 characters or with control characters), `no callback URL`, "
            "`malformed URL` or `unauthorized URL`",
            **TEXT,
        },
        **UNAUTHORISED,
        **UNAVAILABLE,
    },
)
async def servlet_register(
    registrar: RegistrarDep,
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
    if not registrar.admits(url):
        return PlainTextResponse("unauthorized URL", status_code=400)
    await registrar.register(room, str(url))
    return PlainTextResponse("\n")
