"""`/servlet/register`: VolanoChat's registration call, with its plain-text answers."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse

from services.registry.deps import Auth, RegistrarDep
from services.registry.metrics import REGISTRATIONS
from services.registry.openapi import TEXT, UNAUTHORISED, UNAVAILABLE
from services.registry.prefix import UrlError, parse_url
from services.registry.schemas import check_room

__all__ = ["router"]


def _utf8(query: bytes, name: str) -> str | None:
    """The first value of `name` in a raw query string, percent-decoded as strict UTF-8 (None
    if absent); raises UnicodeDecodeError if its bytes are not UTF-8."""
    for key, value in parse_qsl(query.decode("latin-1"), True, encoding="latin-1"):
        if key == name:
            return value.encode("latin-1").decode("utf-8")
    return None


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
    request: Request,
    registrar: RegistrarDep,
    room: Annotated[str | None, Query(description="room name")] = None,
    href: Annotated[str | None, Query(description="callback URL")] = None,
) -> PlainTextResponse:
    """VolanoChat's `/servlet/register?room=R&href=U`, with its plain-text answers. The same
    rules as `POST /v1/subscriptions`; the secret is not shown (the REST call shows it). A
    parameter whose percent-encoding is not UTF-8 is refused, not read with U+FFFD in it."""
    query: bytes = request.scope["query_string"]
    try:
        room = check_room(_utf8(query, "room") or "")
    except (ValueError, UnicodeDecodeError):
        return PlainTextResponse("no room name", status_code=400)
    if not href:
        return PlainTextResponse("no callback URL", status_code=400)
    try:
        url = parse_url(_utf8(query, "href") or "")
    except (UrlError, UnicodeDecodeError):
        REGISTRATIONS.labels("malformed").inc()
        return PlainTextResponse("malformed URL", status_code=400)
    if not registrar.admits(url):
        return PlainTextResponse("unauthorized URL", status_code=400)
    await registrar.register(room, str(url))
    return PlainTextResponse("\n")
