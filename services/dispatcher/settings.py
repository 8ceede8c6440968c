"""Dispatcher settings (docs/operations.md): environment first, then these defaults."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from services.dispatcher.guard import Network, parse_subnets
from shared.settings import CommonSettings

__all__ = ["DispatcherSettings"]


class DispatcherSettings(CommonSettings):
    dispatcher_port: int = Field(8090, description="health and metrics port")
    dispatch_timeout_s: float = Field(10.0, gt=0, description="wait for a callback's answer")
    dispatch_retry_window_s: float = Field(
        60.0, ge=0, description="retry a silent callback this long"
    )
    dispatch_backoff_initial_s: float = Field(0.5, gt=0, description="first retry delay")
    dispatch_backoff_max_s: float = Field(10.0, gt=0, description="longest retry delay")
    dispatch_http_transport: Literal["wire", "httpx"] = Field(
        "wire", description="httpx transport: wire (the dispatcher's own) or httpx's own"
    )
    dispatch_heartbeat_s: float = Field(
        1.0, gt=0, description="how often a replica announces itself and reads the others"
    )
    dispatch_member_ttl_s: float = Field(
        5.0, gt=0, description="a replica silent this long is dead; its work moves"
    )
    dispatch_read_ahead: int = Field(
        100, ge=1, le=10_000, description="events held per registration, POSTed in turn"
    )
    dispatch_read_concurrency: int = Field(
        32, ge=1, description="reads of the stream in flight for registrations catching up"
    )
    dispatch_flush_s: float = Field(
        0.5, gt=0, description="how often positions of registrations that moved are stored"
    )
    dispatch_watermark_s: float = Field(
        2.0, gt=0, description="how often each partition's watermark is stored"
    )
    dispatch_rewind_max: int = Field(
        100_000,
        ge=0,
        description="how many events back the tail may re-read to take a partition over",
    )

    dispatch_block_private: bool = Field(
        False,
        description="refuse to dial loopback, private, link-local and other non-public addresses",
    )
    dispatch_allowed_subnets: str = Field(
        "", description="CIDRs callbacks may reach despite DISPATCH_BLOCK_PRIVATE, comma-separated"
    )

    def allowed_subnets(self) -> list[Network]:
        return parse_subnets(self.dispatch_allowed_subnets)

    @model_validator(mode="after")
    def _guard_settings(self) -> DispatcherSettings:
        self.allowed_subnets()  # a malformed subnet stops the service at start-up
        if self.dispatch_block_private and self.dispatch_http_transport != "wire":
            raise ValueError("DISPATCH_BLOCK_PRIVATE needs DISPATCH_HTTP_TRANSPORT=wire")
        return self

    @model_validator(mode="after")
    def _heartbeat_within_ttl(self) -> DispatcherSettings:
        if self.dispatch_heartbeat_s * 2 > self.dispatch_member_ttl_s:
            raise ValueError("DISPATCH_MEMBER_TTL_S must be at least twice DISPATCH_HEARTBEAT_S")
        return self
