"""`/v1/subscriptions`: register, list, fetch and unregister callbacks."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.registry.cursor import CursorError, decode_cursor, encode_cursor
from services.registry.deps import Auth, BusDep, HistoryDep, RegistrarDep, SubId, UpkeepDep
from services.registry.metrics import DELETIONS
from services.registry.openapi import (
    NOT_FOUND,
    NOT_FOUND_OR_ENDED,
    TOO_LARGE,
    UNAUTHORISED,
    UNAVAILABLE,
    error,
    not_found,
)
from services.registry.schemas import (
    Room,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionList,
    SubscriptionOut,
)
from shared.ids import is_subscription_id
from shared.replay import first_replayed
from shared.since import parse_since, rfc3339
from shared.subscriptions import (
    Subscription,
    delete_subscription,
    get_subscription,
    list_page,
)

__all__ = ["LIST_LIMIT_MAX", "router"]

log = logging.getLogger(__name__)

LIST_LIMIT_MAX = 100

router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"], dependencies=[Auth])


def _out(sub: Subscription) -> SubscriptionOut:
    return SubscriptionOut(id=sub.id, room=sub.room, url=sub.url, created_at=sub.created_at)


@router.post(
    "",
    summary="Register a callback URL for a room's events",
    status_code=201,
    response_model=SubscriptionCreated,
    responses={
        200: {
            "model": SubscriptionOut,
            "description": "This room and URL were registered already: the existing "
            "subscription, without its secret",
        },
        201: {"description": "Registered; the answer holds the signing secret, only now"},
        403: error("no EVENT_CALLBACK_PREFIX admits this URL", "unauthorized URL"),
        **TOO_LARGE,
        **UNAUTHORISED,
        **UNAVAILABLE,
    },
)
async def register(body: SubscriptionCreate, registrar: RegistrarDep, bus: BusDep) -> Response:
    """From the moment this answers 201 (or 200), every event the chat service accepts for
    the room reaches the URL, in order. With `since`, the room's events the stream holds after
    that point come first (and the 201 says from when, in `replay_from`). Malformed input gets
    422 and changes nothing."""
    if not registrar.admits(body.url):
        raise HTTPException(403, "unauthorized URL")
    since = None if body.since is None else parse_since(body.since)
    first = None if since is None else await first_replayed(bus, body.room, since)
    sub, created = await registrar.register(body.room, body.url, since)
    if not created:
        return JSONResponse(_out(sub).model_dump(), status_code=200)
    created_body = SubscriptionCreated(
        id=sub.id, room=sub.room, url=sub.url, secret=sub.secret, created_at=sub.created_at
    )
    if since is None:
        return JSONResponse(created_body.model_dump(exclude={"replay_from"}), status_code=201)
    created_body.replay_from = None if first is None else rfc3339(first)
    return JSONResponse(created_body.model_dump(), status_code=201)


@router.get(
    "",
    summary="List subscriptions, oldest first, a page at a time",
    response_model=SubscriptionList,
    responses={**UNAUTHORISED, **UNAVAILABLE},
)
async def list_(
    bus: BusDep,
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
    page = await list_page(bus, room, start, limit)
    next_ = None if page.next_seq is None else encode_cursor(page.next_seq, room)
    return SubscriptionList(items=[_out(s) for s in page.items], next=next_)


@router.get(
    "/{sub_id}",
    summary="Fetch one subscription (without its secret)",
    response_model=SubscriptionOut,
    responses={**NOT_FOUND_OR_ENDED, **UNAUTHORISED, **UNAVAILABLE},
)
async def get(sub_id: SubId, bus: BusDep, history: HistoryDep) -> Response:
    """404 once it has ended, saying why (`"detail": "ended"`) for `EVENTS_MAX_AGE_S`; after
    that, or for an id never made, `{"detail": "not found"}`."""
    if not is_subscription_id(sub_id):
        return not_found()
    sub = await get_subscription(bus, sub_id)
    if sub is not None:
        return JSONResponse(_out(sub).model_dump())
    ended = await history.ended.find(bus, sub_id)
    if ended is None:
        return not_found()
    return JSONResponse({"detail": "ended", **asdict(ended)}, status_code=404)


@router.delete(
    "/{sub_id}",
    summary="Unregister",
    status_code=204,
    response_class=Response,
    responses={
        204: {"description": "Unregistered: no further event is sent to it"},
        **NOT_FOUND,
        **UNAUTHORISED,
        **UNAVAILABLE,
    },
)
async def delete(sub_id: SubId, bus: BusDep, upkeep: UpkeepDep, history: HistoryDep) -> Response:
    """Its undelivered events are dropped; `GET` then answers 404 with `"reason": "deleted"`.
    Registering the same room and URL again later gives the same id with a new secret."""
    gone = await delete_subscription(bus, sub_id) if is_subscription_id(sub_id) else None
    if gone is None:
        DELETIONS.labels("not_found").inc()
        return not_found()
    DELETIONS.labels("deleted").inc()
    upkeep.changed()
    try:
        await history.deleted(bus, gone)
    except Exception as exc:  # it is deleted all the same: GET will say "not found"
        log.warning("cannot record that %s was deleted: %r", sub_id, exc)
    return Response(status_code=204)
