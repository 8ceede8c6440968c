"""Chat settings (SPEC §4, §6), VolanoChat's defaults."""

from __future__ import annotations

from pydantic import Field

from shared.settings import CommonSettings

__all__ = ["ChatSettings"]


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
        1000, ge=1, description="frames queued to a slow client before it is dropped"
    )
    chat_publish_timeout_s: float = Field(
        5.0, gt=0, description="wait for JetStream to take an event"
    )

    def permanent_rooms(self) -> list[str]:
        return [r.strip() for r in self.chat_rooms.split(",") if r.strip()]
