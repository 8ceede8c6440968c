"""Registry settings (docs/registry-api.md, docs/operations.md)."""

from __future__ import annotations

from pydantic import Field

from services.registry.prefix import PrefixList, UrlError
from shared.settings import CommonSettings, is_placeholder

__all__ = ["TOKEN_MIN", "RegistrySettings"]


TOKEN_MIN = 32  # characters: a bearer token as strong as the chat's JWT secret


class RegistrySettings(CommonSettings):
    registry_port: int = Field(8080, description="HTTP port")
    registry_api_tokens: str = Field("", description="bearer tokens, comma-separated")
    registry_allow_no_auth: bool = Field(
        False, description="serve without tokens (development only)"
    )
    event_callback_prefix: str = Field(
        "", description="URL prefixes that may register, white-space separated; empty admits none"
    )

    def tokens(self) -> list[str]:
        return [t.strip() for t in self.registry_api_tokens.split(",") if t.strip()]

    def prefixes(self) -> PrefixList:
        return PrefixList(self.event_callback_prefix)

    def check(self) -> None:
        """Refuse to start in a state that would serve the API to anyone, or with a whitelist
        that does not parse."""
        if not self.tokens() and not self.registry_allow_no_auth:
            raise SystemExit(
                "REGISTRY_API_TOKENS is empty: set at least one token "
                "(or REGISTRY_ALLOW_NO_AUTH=true for development)"
            )
        if any(is_placeholder(t) for t in self.tokens()):
            raise SystemExit("REGISTRY_API_TOKENS holds a placeholder value: set real tokens")
        if any(len(t) < TOKEN_MIN for t in self.tokens()):
            raise SystemExit(
                f"REGISTRY_API_TOKENS: every token must be at least {TOKEN_MIN} characters, "
                "e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        try:
            self.prefixes()
        except UrlError as exc:
            raise SystemExit(f"EVENT_CALLBACK_PREFIX: {exc}") from None
