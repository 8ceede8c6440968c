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

from services.chat.connection import Connection
from services.chat.protocol import ChatError, error_frame
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
    holder = BusHolder(settings, "chat")
    server = ChatServer(settings, Publisher(holder, settings.chat_publish_timeout_s))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder.start()
        yield
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
        host = ws.client.host if ws.client else "unknown"
        conn = Connection(host, ws.send_text, settings.chat_send_queue)
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
                conn.push(error_frame(ChatError("bad_request", "frames must be JSON text")))
            elif len(text.encode()) > settings.chat_frame_max:
                conn.push(error_frame(ChatError("too_long", "frame too large")))
            else:
                await server.handle(conn, text)
    except WebSocketDisconnect:
        return
    finally:
        overflow.cancel()
