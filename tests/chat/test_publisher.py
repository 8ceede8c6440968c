"""The chat's event payloads are `shared.events.to_json`, byte for byte."""

from __future__ import annotations

from services.chat.publisher import payload
from shared.events import (
    ChatEvent,
    CreateEvent,
    DeleteEvent,
    EnterEvent,
    Event,
    ExitEvent,
    KickEvent,
    RingEvent,
    to_json,
)


def test_payload_is_to_json_for_every_kind() -> None:
    events: list[Event] = [
        CreateEvent("Lobby"),
        EnterEvent("Lobby", "ann \u00e9", "10.0.0.1", 'say "hi"', "member"),
        ChatEvent("Lobby", "ann", "<b>&\u2603\ud83d\ude00"),
        RingEvent("Lobby", "ann", "bob"),
        KickEvent("Lobby", "mod", "bob", "ban"),
        ExitEvent("Lobby", "bob"),
        DeleteEvent("Lobby"),
    ]
    for event in events:
        assert payload(event) == to_json(event)
