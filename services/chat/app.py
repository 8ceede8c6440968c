"""The chat service's FastAPI app: `/ws`, the web client at `/`, health and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, WebSocket
from fastapi.responses import FileResponse
from starlette.websockets import WebSocketDisconnect

from services.chat.bans import Bans
from services.chat.connection import Connection
from services.chat.hosts import TrustedProxies, client_host
from services.chat.publisher import Publisher
from services.chat.server import ChatServer
from services.chat.settings import ChatSettings
from shared.bus import BusHolder
from shared.service import health_router

__all__ = ["create_app"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"


def create_app(settings: ChatSettings | None = None) -> FastAPI:
    settings = settings or ChatSettings()
    settings.check()
    holder = BusHolder(settings, "chat")
    bans = Bans(holder, settings.chat_ban_minutes, settings.nats_replicas)
    server = ChatServer(settings, Publisher(holder, settings.chat_publish_timeout_s), bans)
    trusted = TrustedProxies(settings.trusted_proxies())

    async def prepare() -> None:
        await holder.wait()
        await bans.prepare()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder.start()
        preparing = asyncio.create_task(prepare())
        yield
        preparing.cancel()
        # uvicorn has closed the sockets by now and their handlers have published the exits;
        # anyone left (a handler cut short) exits here, before the bus goes
        await server.shutdown(max(settings.shutdown_grace_s, 1.0))
        await holder.close()

    app = FastAPI(title="Volano chat", lifespan=lifespan)
    app.state.server = server
    app.include_router(health_router(holder.ready))

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.websocket("/ws")
    async def websocket(ws: WebSocket) -> None:
        await ws.accept()
        peer = ws.client.host if ws.client else "unknown"
        host = client_host(peer, ws.headers.get("x-forwarded-for"), trusted)

        async def close(code: int, reason: str) -> None:
            with contextlib.suppress(Exception):
                await ws.close(code=code, reason=reason)

        conn = Connection(host, ws.send_text, settings.chat_send_queue, server.new_bucket(), close)
        server.connect(conn)
        writer = asyncio.create_task(conn.write_loop())
        try:
            await _read_loop(ws, conn, server, settings)
        finally:
            await server.disconnect(conn)
            conn.close_writer()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer, 1.0)
            writer.cancel()

    return app


async def _read_loop(
    ws: WebSocket, conn: Connection, server: ChatServer, settings: ChatSettings
) -> None:
    overflow = asyncio.create_task(conn.overflowed.wait())
    try:
        while True:
            receive = asyncio.create_task(ws.receive())
            done, _ = await asyncio.wait({receive, overflow}, return_when=asyncio.FIRST_COMPLETED)
            if overflow in done:
                receive.cancel()
                await ws.close(code=1008, reason="client too slow")
                return
            message = receive.result()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                server.refuse(conn, "bad_request", "frames must be JSON text, not binary")
            elif _too_large(text, settings.chat_frame_max):
                server.refuse(
                    conn, "too_long", f"a frame may hold at most {settings.chat_frame_max} bytes"
                )
            else:
                await server.handle(conn, text)
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        overflow.cancel()


def _too_large(text: str, cap: int) -> bool:
    """More than `cap` bytes of UTF-8 (encoding only when the length alone cannot tell)."""
    n = len(text)
    return n > cap or (4 * n > cap and len(text.encode("utf-8", "surrogatepass")) > cap)
