"""The registry's JSON bodies, as integrators see them in `/docs`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SubscriptionCreate", "SubscriptionList", "SubscriptionOut"]


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"room": "Lobby", "url": "https://hooks.example.com/volano"}]
        },
    )

    room: str = Field(min_length=1, max_length=100, description="room name, 1-100 characters")
    url: str = Field(min_length=1, max_length=2048, description="absolute http(s) callback URL")


class SubscriptionOut(BaseModel):
    id: str = Field(description="subscription id")
    room: str
    url: str
    secret: str | None = Field(
        None,
        description="signing secret (whsec_...), returned only when the subscription is created",
    )
    created_at: str = Field(description="RFC 3339, UTC")


class SubscriptionList(BaseModel):
    items: list[SubscriptionOut]
    next: str | None = Field(None, description="cursor for the next page, or null")
