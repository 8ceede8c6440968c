"""`python -m services.chat`: serve until SIGTERM or SIGINT, then let everyone exit."""

from services.chat.app import create_app
from services.chat.settings import ChatSettings
from services.chat.wsserver import ChatWebSocketProtocol
from shared.service import run

settings = ChatSettings()
settings.check()
run(
    create_app(settings),
    settings,
    settings.chat_port,
    # uvicorn's websockets-sansio protocol with a direct line for broadcasts (wsserver.py)
    ws=ChatWebSocketProtocol,
    ws_ping_interval=settings.chat_ping_interval_s,
    ws_ping_timeout=settings.chat_ping_timeout_s,
    # frames up to CHAT_FRAME_MAX get a `too_long` error; beyond this the connection is closed
    ws_max_size=max(16 * settings.chat_frame_max, 1 << 20),
)
