"""`/v1/subscriptions/{id}/attempts`: a registration's last delivery attempts, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.registry.cursor import CursorError, decode_cursor, encode_cursor, newest_page
from services.registry.deps import Auth, BusDep, HistoryDep, SubId
from services.registry.openapi import NOT_FOUND, UNAUTHORISED, UNAVAILABLE, not_found
from services.registry.schemas import AttemptList, AttemptOut
from shared.attempts import KEPT
from shared.ids import is_subscription_id
from shared.since import rfc3339
from shared.subscriptions import get_subscription

__all__ = ["router"]

router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"], dependencies=[Auth])


@router.get(
    "/{sub_id}/attempts",
    summary="The last 100 delivery attempts, newest first, a page at a time",
    response_model=AttemptList,
    responses={**NOT_FOUND, **UNAUTHORISED, **UNAVAILABLE},
)
async def attempts(
    sub_id: SubId,
    bus: BusDep,
    history: HistoryDep,
    limit: Annotated[int, Query(ge=1, le=KEPT, description="page size, 1-100")] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=200, description="the `next` of the previous page; absent for the first"),
    ] = None,
) -> Response:
    """Every POST to the callback (successes, refusals, and each retry of an unanswered one),
    of a live registration or of an ended one still kept (`EVENTS_MAX_AGE_S`). A registration
    made again with the same room and URL has the same id, and continues the same list."""
    start = None
    if cursor is not None:
        try:
            start = decode_cursor(cursor, None, attempts_of=sub_id)
        except CursorError as exc:
            raise RequestValidationError(
                [{"loc": ("query", "cursor"), "msg": str(exc), "type": "value_error"}]
            ) from None
    if not is_subscription_id(sub_id):
        return not_found()
    live = await get_subscription(bus, sub_id) is not None
    if not live and await history.ended.find(bus, sub_id) is None:
        return not_found()
    items, following = newest_page(await history.attempts(bus, sub_id), start, limit)
    page = AttemptList(
        items=[
            AttemptOut(
                at=rfc3339(item.at),
                webhook_id=item.webhook_id,
                status=item.status,
                error=item.error,
                duration_ms=item.duration_ms,
            )
            for item in items
        ],
        next=None if following is None else encode_cursor(following, None, attempts_of=sub_id),
    )
    return JSONResponse(page.model_dump())
