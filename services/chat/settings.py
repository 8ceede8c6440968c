"""Chat settings (docs/websocket.md, docs/operations.md), VolanoChat's defaults."""

from __future__ import annotations

from pydantic import Field

from shared.settings import CommonSettings, is_placeholder

__all__ = ["SECRET_MIN", "ChatSettings", "secret_problem"]

SECRET_MIN = 32  # characters (so at least as many bytes): RFC 7518 asks 256 bits for HS256


def secret_problem(secret: str) -> str | None:
    """Why `secret` may not sign member tokens, or None. Empty is allowed: no member tokens."""
    if is_placeholder(secret):
        return (
            "CHAT_JWT_SECRET holds a placeholder value: set a real secret "
            "(or leave it empty to refuse all member tokens)"
        )
    if secret and len(secret.strip()) < SECRET_MIN:
        return (
            f"CHAT_JWT_SECRET is too short ({len(secret.strip())} characters): use at least "
            f"{SECRET_MIN}, e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))' "
            "(or leave it empty to refuse all member tokens)"
        )
    return None


class ChatSettings(CommonSettings):
    chat_port: int = Field(8000, description="HTTP and websocket port")
    chat_rooms: str = Field("Lobby", description="permanent rooms, comma-separated")
    chat_dynamic_rooms: bool = Field(True, description="entering an unknown room creates it")
    chat_room_limit: int = Field(25, ge=1, description="users a room")
    chat_user_max: int = Field(20, ge=1, description="longest user name")
    chat_room_max: int = Field(100, ge=1, description="longest room name")
    chat_text_max: int = Field(400, ge=1, description="longest message or profile")
    chat_frame_max: int = Field(4096, ge=256, description="largest websocket frame, bytes")
    chat_rate_limit: float = Field(
        5.0, ge=0, description="requests a second per connection; 0: off"
    )
    chat_rate_burst: int = Field(10, ge=1, description="burst of requests per connection")
    chat_send_queue: int = Field(
        1000,
        ge=1,
        description="frames (512 bytes each) unsent to a slow client before it is dropped",
    )
    chat_publish_timeout_s: float = Field(
        5.0, gt=0, description="wait for JetStream to take an event"
    )
    chat_replica_ttl_s: float = Field(
        8.0, ge=2, description="how long a chat replica's heartbeat outlives it"
    )
    chat_history: int = Field(
        50,
        ge=0,
        le=100,
        description="chat messages of the room sent with `entered` (its `history`); 0: none",
    )
    chat_replay_max: int = Field(
        500,
        ge=0,
        description="room events an `enter` with `since` may replay; a client further behind "
        "gets no replay and `gap: true`",
    )
    chat_jwt_secret: str = Field(
        "",
        description=f"HS256 key of member tokens, at least {SECRET_MIN} characters; "
        "empty: member tokens are refused",
    )
    chat_ban_minutes: float = Field(60.0, gt=0, description="how long a ban bars host and name")
    chat_trusted_proxies: str = Field(
        "", description="proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For is used"
    )
    chat_host_connections: int = Field(
        100,
        ge=0,
        description="open websockets per client address (the `host`); one more is closed at "
        "once with code 1008; 0: no limit",
    )
    chat_host_rooms_per_minute: int = Field(
        30,
        ge=0,
        description="dynamic rooms one client address may create in any minute; more get "
        "`rate_limited`; 0: no limit",
    )
    chat_allowed_origins: str = Field(
        "",
        description="origins (scheme://host[:port], comma-separated) whose browsers may open "
        "/ws; a handshake with another Origin gets 403, one without Origin (not a browser) is "
        "allowed; empty: any origin",
    )
    chat_ping_interval_s: float = Field(
        20.0, gt=0, description="websocket ping interval; a silent client is dropped"
    )
    chat_ping_timeout_s: float = Field(20.0, gt=0, description="how long a ping may go unanswered")

    def check(self) -> None:
        """Refuse to start with a placeholder secret or one shorter than `SECRET_MIN`
        characters (an empty one turns member tokens off)."""
        problem = secret_problem(self.chat_jwt_secret)
        if problem is not None:
            raise SystemExit(problem)

    def trusted_proxies(self) -> list[str]:
        return [p.strip() for p in self.chat_trusted_proxies.split(",") if p.strip()]

    def permanent_rooms(self) -> list[str]:
        return [r.strip() for r in self.chat_rooms.split(",") if r.strip()]
