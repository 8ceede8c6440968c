"""Dispatcher settings (SPEC §2, §6): environment first, then these defaults."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

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
    dispatch_http_transport: Literal["aiohttp", "httpx"] = Field(
        "aiohttp", description="httpx transport: aiohttp (httpx-aiohttp) or httpx's own"
    )
    dispatch_heartbeat_s: float = Field(
        1.0, gt=0, description="how often a replica announces itself and reads the others"
    )
    dispatch_member_ttl_s: float = Field(
        5.0, gt=0, description="a replica silent this long is dead; its work moves"
    )
    dispatch_lag_sample_s: float = Field(
        15.0, gt=0, description="how often consumer lag (num_pending) is sampled"
    )

    @model_validator(mode="after")
    def _heartbeat_within_ttl(self) -> DispatcherSettings:
        if self.dispatch_heartbeat_s * 2 > self.dispatch_member_ttl_s:
            raise ValueError("DISPATCH_MEMBER_TTL_S must be at least twice DISPATCH_HEARTBEAT_S")
        return self
