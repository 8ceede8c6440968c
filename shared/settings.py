"""Settings read from the environment (docs/operations.md): environment first, then a default."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["PLACEHOLDER_PREFIX", "CommonSettings", "is_placeholder"]


class CommonSettings(BaseSettings):
    """What every service reads. Each service's settings class extends this one."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    nats_url: str = Field("nats://127.0.0.1:4222", description="NATS server(s), comma-separated")
    nats_user: str = Field(
        "", description="the NATS user this service connects as; empty: anonymous"
    )
    nats_password: str = Field("", description="that user's password (with NATS_USER)")
    nats_replicas: int = Field(1, ge=1, le=5, description="JetStream replicas of stream and KV")
    events_max_age_s: float = Field(
        7 * 24 * 3600, gt=0, description="how long the events stream keeps an event"
    )
    events_max_bytes: int = Field(
        1024**3, gt=0, description="how many bytes the events stream keeps (the oldest go first)"
    )
    bind_host: str = Field("0.0.0.0", description="address the HTTP server listens on")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    shutdown_grace_s: float = Field(
        10.0, ge=0, description="time given to in-flight work on SIGTERM"
    )

    @model_validator(mode="after")
    def _nats_credentials(self) -> CommonSettings:
        """A user needs its password, and a password its user; a placeholder from deploy/k8s is
        refused like the services' other secrets."""
        if bool(self.nats_user) != bool(self.nats_password):
            raise ValueError("NATS_USER and NATS_PASSWORD: set both (or neither, anonymous)")
        if is_placeholder(self.nats_password):
            raise ValueError("NATS_PASSWORD holds a placeholder value: set the real password")
        return self


PLACEHOLDER_PREFIX = "change-me"


def is_placeholder(secret: str) -> bool:
    """True for the placeholder values shipped in deploy/k8s, which no service may start with."""
    return secret.strip().lower().startswith(PLACEHOLDER_PREFIX)
