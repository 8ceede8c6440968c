"""The seven room events of docs/callbacks.md as typed, immutable values.

An event travels on NATS as compact JSON (`to_json` / `from_json`) and reaches callbacks as XML
(`shared.codec`). Field order in each class is the child order of its XML element.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import ClassVar, Literal

__all__ = [
    "EVENT_TYPES",
    "ChatEvent",
    "CreateEvent",
    "DeleteEvent",
    "EnterEvent",
    "Event",
    "ExitEvent",
    "KickEvent",
    "RingEvent",
    "compact_json",
    "event_from_dict",
    "event_to_dict",
    "from_json",
    "to_json",
]

MemberType = Literal["member", "non-member"]
KickType = Literal["remove", "disconnect", "ban"]


@dataclass(frozen=True, slots=True)
class CreateEvent:
    kind: ClassVar[str] = "create"
    room: str


@dataclass(frozen=True, slots=True)
class EnterEvent:
    kind: ClassVar[str] = "enter"
    attribute: ClassVar[str] = "type"
    room: str
    user: str
    host: str
    profile: str
    type: MemberType = "non-member"


@dataclass(frozen=True, slots=True)
class ChatEvent:
    kind: ClassVar[str] = "chat"
    room: str
    user: str
    message: str


@dataclass(frozen=True, slots=True)
class RingEvent:
    kind: ClassVar[str] = "ring"
    room: str
    from_: str
    to: str


@dataclass(frozen=True, slots=True)
class KickEvent:
    kind: ClassVar[str] = "kick"
    attribute: ClassVar[str] = "type"
    room: str
    from_: str
    to: str
    type: KickType = "remove"


@dataclass(frozen=True, slots=True)
class ExitEvent:
    kind: ClassVar[str] = "exit"
    room: str
    user: str


@dataclass(frozen=True, slots=True)
class DeleteEvent:
    kind: ClassVar[str] = "delete"
    room: str


Event = CreateEvent | EnterEvent | ChatEvent | RingEvent | KickEvent | ExitEvent | DeleteEvent

EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (CreateEvent, EnterEvent, ChatEvent, RingEvent, KickEvent, ExitEvent, DeleteEvent)
}


def field_name(python_name: str) -> str:
    """The wire name of a field: `from_` is `from` in XML and JSON."""
    return python_name.rstrip("_")


def event_to_dict(event: Event) -> dict[str, str]:
    """`{"kind": ..., field: value, ...}` with wire names, in XML child order."""
    data = {"kind": event.kind}
    data.update({field_name(k): v for k, v in asdict(event).items()})
    return data


def event_from_dict(data: dict[str, object]) -> Event:
    """Inverse of `event_to_dict`; raises ValueError on anything that is not a valid event."""
    kind = data.get("kind")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown event kind: {kind!r}")
    values: dict[str, str] = {}
    for f in fields(cls):
        value = data.get(field_name(f.name))
        if not isinstance(value, str):
            raise ValueError(f"{kind}: field {field_name(f.name)!r} must be a string")
        values[f.name] = value
    event = cls(**values)  # type: ignore[arg-type]
    _check_attribute(event)
    return event


def _check_attribute(event: Event) -> None:
    if isinstance(event, EnterEvent) and event.type not in ("member", "non-member"):
        raise ValueError(f"enter: bad type {event.type!r}")
    if isinstance(event, KickEvent) and event.type not in ("remove", "disconnect", "ban"):
        raise ValueError(f"kick: bad type {event.type!r}")


# `json.dumps(obj, separators=(",", ":"))` without building a new encoder on every call
compact_json = json.JSONEncoder(separators=(",", ":")).encode


def to_json(event: Event) -> bytes:
    return compact_json(event_to_dict(event)).encode("ascii")


def from_json(payload: bytes) -> Event:
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"event is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("event must be a JSON object")
    return event_from_dict(data)
