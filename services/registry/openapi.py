"""What `/docs` says beyond the routes' own signatures: the API's description, its tags, and
the documented error answers the routes share."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from services.registry.bodylimit import MAX_BODY_BYTES
from services.registry.deps import UNAUTHORISED_DETAIL
from services.registry.schemas import ENDED_EXAMPLE, EndedOut, Error

__all__ = [
    "DESCRIPTION",
    "NOT_FOUND",
    "NOT_FOUND_OR_ENDED",
    "TAGS",
    "TEXT",
    "TITLE",
    "TOO_LARGE",
    "UNAUTHORISED",
    "UNAVAILABLE",
    "Responses",
    "error",
    "not_found",
]

Responses = dict[int | str, dict[str, Any]]

TITLE = "Volano event registry"

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
`DISPATCH_RETRY_WINDOW_S`, is unregistered: `GET` on it then answers 404, saying why, when, and
the `webhook-id` of the last event the callback answered 200 (kept for `EVENTS_MAX_AGE_S`).
`GET /v1/subscriptions/{id}/attempts` lists its last 100 delivery attempts, newest first.

**Replay.** Registering with `since` (that `webhook-id`, or a time) first delivers the room's
events the stream still holds after that point, in order, then the live ones: a callback
ended by an error and registered again with the last `webhook-id` it processed misses nothing.

**Signed.** Each POST carries Standard Webhooks headers (`webhook-id`, `webhook-timestamp`,
`webhook-signature`), signed with the registration's `secret`, shown once in the 201 answer.

**Errors.** 422 bodies are `{"detail": [{"loc", "msg", "type"}...]}`; every other error is
`{"detail": "..."}`. 503 means NATS JetStream, where registrations live, cannot be reached
right now: nothing was changed, retry later.
"""

TAGS = [
    {"name": "subscriptions", "description": "Register and unregister callbacks."},
    {"name": "VolanoChat", "description": "The classic servlet call, unchanged."},
    {"name": "operations", "description": "Health and metrics, without a token."},
]

TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}}


def error(description: str, example: str) -> dict[str, Any]:
    """A documented `{"detail": "..."}` answer."""
    return {
        "model": Error,
        "description": description,
        "content": {"application/json": {"example": {"detail": example}}},
    }


UNAUTHORISED: Responses = {401: error("no or wrong bearer token", UNAUTHORISED_DETAIL)}
UNAVAILABLE: Responses = {
    503: error("NATS JetStream unreachable; nothing changed", "NATS is unavailable")
}
NOT_FOUND_DETAIL = "not found"
NOT_FOUND: Responses = {
    404: error("no such subscription (never made, or ended longer ago than kept)", "not found")
}
NOT_FOUND_OR_ENDED: Responses = {
    404: {
        "model": EndedOut | Error,
        "description": "Ended (deleted, or by its callback's answer or silence): why and when, "
        'kept for `EVENTS_MAX_AGE_S`; else `{"detail": "not found"}`',
        "content": {
            "application/json": {
                "examples": {
                    "ended": {"value": ENDED_EXAMPLE},
                    "not found": {"value": {"detail": NOT_FOUND_DETAIL}},
                }
            }
        },
    }
}


def not_found() -> JSONResponse:
    return JSONResponse({"detail": NOT_FOUND_DETAIL}, status_code=404)


TOO_LARGE: Responses = {
    413: error(
        f"body over {MAX_BODY_BYTES // 1024} KiB",
        f"request body is larger than {MAX_BODY_BYTES} bytes",
    )
}
