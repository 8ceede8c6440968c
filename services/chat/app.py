"""The chat service's FastAPI app: `/ws`, the web client at `/`, health and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

from fastapi import FastAPI, WebSocket
from fastapi.responses import FileResponse, PlainTextResponse
from starlette.websockets import WebSocketDisconnect

from services.chat.bans import Bans
from services.chat.cluster import Cluster
from services.chat.connection import Close, Connection
from services.chat.frames import Outgoing
from services.chat.hosts import ForwardedForError, TrustedProxies, client_host
from services.chat.limits import Origins
from services.chat.publisher import Publisher
from services.chat.recovery import StreamReader
from services.chat.replicas import Replicas
from services.chat.server import ChatServer
from services.chat.settings import ChatSettings
from services.chat.wsserver import LINK, ChatWebSocketProtocol
from shared.bus import BusHolder
from shared.service import health_router

__all__ = ["create_app"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"

# CHAT_SEND_QUEUE counts frames; the socket's write buffer counts bytes: a chat frame is 100 to
# 600 bytes, so a client is dropped once this many bytes per queued frame are waiting for it
SEND_BYTES_PER_FRAME = 512
CLOSE_POLICY_VIOLATION = 1008  # one connection too many from an address
CLOSE_TRY_AGAIN = 1013  # not serving (joining, or cut off from NATS): try again, or elsewhere


def create_app(settings: ChatSettings | None = None) -> FastAPI:
    settings = settings or ChatSettings()
    settings.check()
    holder = BusHolder(settings, "chat")
    bans = Bans(holder, settings.chat_ban_minutes, settings.nats_replicas)
    publisher = Publisher(holder, settings.chat_publish_timeout_s)
    replicas = Replicas(settings.chat_replica_ttl_s, settings.nats_replicas)
    server = ChatServer(settings, publisher, bans, replicas, StreamReader(holder))
    cluster = Cluster(server, holder)
    trusted = TrustedProxies(settings.trusted_proxies())
    origins = Origins(settings.chat_allowed_origins)

    async def prepare() -> None:
        await holder.wait()
        await bans.prepare()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder.start()
        preparing = asyncio.create_task(prepare())
        joining = asyncio.create_task(cluster.run())
        yield
        preparing.cancel()
        # uvicorn has closed the sockets by now and their handlers have published the exits;
        # anyone left (a handler cut short) exits here, before the bus goes
        await cluster.shutdown(max(settings.shutdown_grace_s, 1.0))
        joining.cancel()
        await holder.close()

    app = FastAPI(title="Volano chat", lifespan=lifespan)
    app.state.server = server
    app.include_router(health_router(lambda: holder.ready() and server.serving))

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.websocket("/ws")
    async def websocket(ws: WebSocket) -> None:
        peer = ws.client.host if ws.client else "unknown"
        if not origins.allows(ws.headers.getlist("origin")):
            await _deny(ws, 403, "this origin may not open the chat (CHAT_ALLOWED_ORIGINS)")
            return
        try:
            # every X-Forwarded-For header: a proxy may add a line of its own after the client's
            host = client_host(peer, ", ".join(ws.headers.getlist("x-forwarded-for")), trusted)
        except ForwardedForError as exc:
            log.warning("refused a websocket from proxy %s: %s", peer, exc)
            await _deny(ws, 400, f"{exc}: the proxy does not say who the client is")
            return
        await ws.accept()
        if not server.serving:
            await ws.close(CLOSE_TRY_AGAIN, "this chat server is not serving yet; reconnect")
            return
        if not server.hosts.open(host):
            await ws.close(CLOSE_POLICY_VIOLATION, "too many connections from your address")
            return
        try:
            await _serve(ws, host, server, settings)
        finally:
            server.hosts.close(host)

    return app


async def _serve(ws: WebSocket, host: str, server: ChatServer, settings: ChatSettings) -> None:
    """One accepted websocket, from its first frame to its last exit."""
    direct = ws.scope.get("extensions", {}).get(LINK)
    link: ChatWebSocketProtocol | AsgiLink
    if isinstance(direct, ChatWebSocketProtocol):
        direct.send_limit = settings.chat_send_queue * SEND_BYTES_PER_FRAME
        link = direct
    else:  # another ASGI server: frames go through `ws.send_text`
        link = AsgiLink(ws, settings.chat_send_queue)
    conn = Connection(host, link, server.new_bucket())
    server.connect(conn)
    # the protocol's own `receive` when it is ours: the same messages as Starlette's
    # `ws.receive`, which only adds state checks that matter before `accept`
    receive = link.receive if isinstance(link, ChatWebSocketProtocol) else ws.receive
    try:
        await _read_loop(receive, conn, server, settings)
    finally:
        await server.disconnect(conn)
        if isinstance(link, AsgiLink):
            await link.finish()


async def _deny(ws: WebSocket, status: int, reason: str) -> None:
    """Refuse the handshake with an HTTP answer that says why (uvicorn's own would be a bare
    403, which is what another ASGI server without the denial extension gives)."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(PlainTextResponse(reason + "\n", status_code=status))
    else:
        await ws.close(code=1008, reason=reason)


async def _read_loop(
    receive: Callable[[], Awaitable[Mapping[str, object]]],
    conn: Connection,
    server: ChatServer,
    settings: ChatSettings,
) -> None:
    """One frame at a time, in order; a dropped or kicked client's disconnect ends it."""
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if not isinstance(text, str):
                server.refuse(conn, "bad_request", "frames must be JSON text, not binary")
            elif _too_large(text, settings.chat_frame_max):
                server.refuse(
                    conn, "too_long", f"a frame may hold at most {settings.chat_frame_max} bytes"
                )
            else:
                await server.handle(conn, text)
    except (WebSocketDisconnect, RuntimeError):
        return


def _too_large(text: str, cap: int) -> bool:
    """More than `cap` bytes of UTF-8 (encoding only when the length alone cannot tell)."""
    n = len(text)
    return n > cap or (4 * n > cap and len(text.encode("utf-8", "surrogatepass")) > cap)


class AsgiLink:
    """The portable `Link`: frames queued to a writer task that sends them through ASGI. Used
    only when the app runs under a server other than `python -m services.chat`."""

    def __init__(self, ws: WebSocket, queue_max: int) -> None:
        self._ws = ws
        self._queue: asyncio.Queue[Outgoing | Close | None] = asyncio.Queue(queue_max)
        self._writer = asyncio.create_task(self._write_loop())

    def send_frame(self, frame: Outgoing) -> bool:
        if self._queue.full():
            return False
        self._queue.put_nowait(frame)
        return True

    def close_after(self, code: int, reason: str) -> None:
        if self._queue.full():  # too slow: what is queued will not be read anyway
            while not self._queue.empty():
                self._queue.get_nowait()
        self._queue.put_nowait(Close(code, reason))

    async def finish(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(self._writer), 1.0)
        self._writer.cancel()

    async def _write_loop(self) -> None:
        with contextlib.suppress(Exception):
            while (item := await self._queue.get()) is not None:
                if isinstance(item, Close):
                    await self._ws.close(code=item.code, reason=item.reason)
                    return
                await self._ws.send_text(item.text)
