"""The registry's JSON bodies and the checks on their fields, as integrators see them in `/docs`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue

from services.registry.ids import EXAMPLE_ID, ID_DESCRIPTION
from services.registry.prefix import MAX_URL_LENGTH, UrlError, normalise_url
from shared.names import has_forbidden_name_characters
from shared.since import parse_since

__all__ = [
    "ENDED_EXAMPLE",
    "ROOM_MAX",
    "AttemptList",
    "AttemptOut",
    "EndedOut",
    "Error",
    "Room",
    "SubscriptionCreate",
    "SubscriptionCreated",
    "SubscriptionList",
    "SubscriptionOut",
    "check_room",
    "check_url",
]

ROOM_MAX = 100  # as the chat service (docs/websocket.md, "Limits")

EXAMPLE_URL = "https://hooks.example.com/volano"
EXAMPLE_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw8kzF3Vj4Qb0="
EXAMPLE_WEBHOOK_ID = f"{EXAMPLE_ID}_1042"
SINCE_MAX = 64  # characters: longer than any webhook-id or RFC 3339 time


def check_room(value: str) -> str:
    """A room name as the chat service accepts it: trimmed, 1-100 characters, no controls."""
    room = value.strip()
    if not room:
        raise ValueError("room name must not be empty or only white space")
    if len(room) > ROOM_MAX:
        raise ValueError(f"room name is longer than {ROOM_MAX} characters")
    if has_forbidden_name_characters(room):  # a room the chat cannot have
        raise ValueError("room name must not contain control characters")
    return room


def check_url(value: str) -> str:
    """An absolute http(s) URL, at most 2048 characters, no user-info, no fragment;
    returned in its normal form (the form that is stored and called)."""
    try:
        return normalise_url(value)
    except UrlError as exc:
        raise ValueError(str(exc)) from None


Room = Annotated[
    str,
    Field(
        # the length is checked after trimming (as the chat service does), so only documented
        json_schema_extra={"minLength": 1, "maxLength": ROOM_MAX},
        description="Room name, 1-100 characters after trimming white space, no control "
        "characters (the chat service's rule). Trimmed before it is stored.",
        examples=["Lobby"],
    ),
    AfterValidator(check_room),
]

CallbackUrl = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="Absolute http(s) URL that receives the room's events, one XML document "
        "per POST. At most 2048 characters, no user-info (`user@`), no fragment (`#`), "
        "strict RFC 3986 syntax, and nothing a server could read as another path (`%2F`, "
        "`%5C`, encoded control characters, `..;` segments). It must lie under one of the "
        "operator's "
        "`EVENT_CALLBACK_PREFIX` prefixes (else 403). Stored in normal form: scheme and host "
        "lower-case, default port dropped, dot-segments resolved, escapes of unreserved "
        "characters decoded.",
        examples=[EXAMPLE_URL],
    ),
    AfterValidator(check_url),
]


def check_since(value: str) -> str:
    """A webhook-id or an RFC 3339 time (`shared/since.py`); kept as sent, parsed again when
    the registration is stored."""
    parse_since(value)
    return value


Since = Annotated[
    str,
    Field(
        min_length=1,
        max_length=SINCE_MAX,
        description="Replay: start after this point instead of now. Either the `webhook-id` of "
        "the last event you processed (`<subscription id>_<sequence>`, the header of every "
        "POST; start after it), or an RFC 3339 time with an offset (start with the first "
        "event stored at or after it). The room's events the stream still holds from there "
        "are delivered first, in order, then the live ones, with no gap and no duplicate. A "
        "point older than the oldest held event starts at the oldest. Ignored when the "
        "registration exists already (200).",
        examples=[EXAMPLE_WEBHOOK_ID, "2026-11-25T16:18:42Z"],
    ),
    AfterValidator(check_since),
]


class Error(BaseModel):
    """Every error but 422 has this body."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "unauthorized URL"}]})

    detail: str = Field(description="what went wrong, for a human")


class SubscriptionCreate(BaseModel):
    """A registration request. Unknown fields are refused (422)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"room": "Lobby", "url": EXAMPLE_URL},
                {"room": "Lobby", "url": EXAMPLE_URL, "since": EXAMPLE_WEBHOOK_ID},
                {"room": "Lobby", "url": EXAMPLE_URL, "since": "2026-11-25T16:18:42Z"},
            ]
        },
    )

    room: Room
    url: CallbackUrl
    since: Since | None = None


def _example(secret: bool) -> dict[str, JsonValue]:
    """A registration as `/docs` shows it, with or without its secret."""
    example: dict[str, JsonValue] = {"id": EXAMPLE_ID, "room": "Lobby", "url": EXAMPLE_URL}
    if secret:
        example["secret"] = EXAMPLE_SECRET
    example["created_at"] = "2026-11-25T16:18:42Z"
    return example


class SubscriptionOut(BaseModel):
    """A registration as listed and fetched: never with its secret."""

    model_config = ConfigDict(json_schema_extra={"examples": [_example(secret=False)]})

    id: str = Field(description=ID_DESCRIPTION, examples=[EXAMPLE_ID])
    room: str = Field(description="room name (trimmed)", examples=["Lobby"])
    url: str = Field(description="callback URL, in normal form", examples=[EXAMPLE_URL])
    created_at: str = Field(
        description="when it was created: RFC 3339, UTC, whole seconds",
        json_schema_extra={"format": "date-time"},
        examples=["2026-11-25T16:18:42Z"],
    )


def _replaying() -> dict[str, JsonValue]:
    return {**_example(secret=True), "replay_from": "2026-11-25T16:18:43.127Z"}


class SubscriptionCreated(SubscriptionOut):
    """A registration just created: the only time its secret is shown. With `since`, it says
    from when it replays."""

    model_config = ConfigDict(json_schema_extra={"examples": [_example(True), _replaying()]})

    secret: str = Field(
        description="Standard Webhooks signing secret (`whsec_` + base64 of 32 random bytes). "
        "Every POST to the callback carries `webhook-signature: v1,<base64 HMAC-SHA256 of "
        '"{webhook-id}.{webhook-timestamp}.{body}">` keyed with the decoded bytes. Returned '
        "only in this 201 answer: keep it. To get a new one, DELETE and register again.",
        examples=[EXAMPLE_SECRET],
    )
    replay_from: str | None = Field(
        None,
        description="Only with `since`: when the first event it replays was stored (RFC 3339, "
        "UTC, milliseconds), or `null` when the stream holds none after that point (it then "
        "starts with the live events).",
        json_schema_extra={"format": "date-time"},
        examples=["2026-11-25T16:18:43.127Z"],
    )


class SubscriptionList(BaseModel):
    """One page of registrations, oldest first."""

    items: list[SubscriptionOut] = Field(description="at most `limit` registrations")
    next: str | None = Field(
        description="Opaque cursor: pass it as `cursor` (with the same `room`) for the next "
        "page. `null` when there is nothing more.",
        examples=["MTI6ZTNiMGM0NDI"],
    )


ENDED_EXAMPLE: dict[str, JsonValue] = {
    "detail": "ended",
    "id": EXAMPLE_ID,
    "room": "Lobby",
    "url": EXAMPLE_URL,
    "ended_at": "2026-11-25T17:02:11Z",
    "reason": "status",
    "status": 500,
    "last_webhook_id": EXAMPLE_WEBHOOK_ID,
}


class EndedOut(BaseModel):
    """The 404 body of `GET` for a registration that ended, kept for `EVENTS_MAX_AGE_S`."""

    model_config = ConfigDict(json_schema_extra={"examples": [ENDED_EXAMPLE]})

    detail: Literal["ended"]
    id: str = Field(description=ID_DESCRIPTION)
    room: str = Field(description="room name")
    url: str = Field(description="callback URL, in normal form")
    ended_at: str = Field(
        description="when it ended: RFC 3339, UTC, whole seconds",
        json_schema_extra={"format": "date-time"},
    )
    reason: Literal["status", "no_answer", "deleted"] = Field(
        description="`status`: the callback answered something other than 200 (in `status`); "
        "`no_answer`: it did not answer within `DISPATCH_RETRY_WINDOW_S`; `deleted`: by DELETE"
    )
    status: int | None = Field(description="the callback's answer when `reason` is `status`")
    last_webhook_id: str | None = Field(
        description="`webhook-id` of the last event the callback answered 200 (register again "
        "with it as `since` to miss nothing), or `null`"
    )


class AttemptOut(BaseModel):
    """One POST to the callback."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "at": "2026-11-25T17:02:11.412Z",
                    "webhook_id": EXAMPLE_WEBHOOK_ID,
                    "status": None,
                    "error": "no answer within 10 s",
                    "duration_ms": 10001.3,
                }
            ]
        }
    )

    at: str = Field(
        description="when the POST started: RFC 3339, UTC, milliseconds",
        json_schema_extra={"format": "date-time"},
    )
    webhook_id: str = Field(description="the event's `webhook-id` (the same on every retry)")
    status: int | None = Field(description="the callback's HTTP status; `null`: no answer")
    error: str | None = Field(description="why there was no answer; `null` when there was one")
    duration_ms: float = Field(description="from the start of the POST to its end")


class AttemptList(BaseModel):
    """One page of delivery attempts, newest first."""

    items: list[AttemptOut] = Field(description="at most `limit` attempts")
    next: str | None = Field(
        description="Opaque cursor: pass it as `cursor` for the next (older) page. `null` when "
        "there is nothing more.",
        examples=["MTI6ZTNiMGM0NDI"],
    )
