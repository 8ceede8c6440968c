"""`python -m services.chat`: serve until SIGTERM or SIGINT, then let everyone exit."""

import uvicorn

from services.chat.app import create_app
from services.chat.settings import ChatSettings
from services.chat.wsserver import ChatWebSocketProtocol
from shared.service import configure_logging

settings = ChatSettings()
settings.check()
configure_logging(settings.log_level)
uvicorn.run(
    create_app(settings),
    host=settings.bind_host,
    port=settings.chat_port,
    log_config=None,
    # uvicorn's websockets-sansio protocol with a direct line for broadcasts (wsserver.py)
    ws=ChatWebSocketProtocol,
    timeout_graceful_shutdown=int(settings.shutdown_grace_s) or None,
    ws_ping_interval=settings.chat_ping_interval_s,
    ws_ping_timeout=settings.chat_ping_timeout_s,
    # frames up to this size get a `too_long` error; larger ones close the connection (1009)
    ws_max_size=max(16 * settings.chat_frame_max, 1 << 20),
    # `host` comes from X-Forwarded-For only for CHAT_TRUSTED_PROXIES (services/chat/hosts.py)
    proxy_headers=False,
)
