"""Dispatcher settings (SPEC §2, §6)."""

from __future__ import annotations

from pydantic import Field

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
