"""uvicorn's websocket protocol (the `websockets` sans-I/O one) with a direct line for the
chat's frames.

Everything about the websocket stays uvicorn's and the `websockets` library's: the handshake,
the frame-size cap, pings and their timeout, the closing handshake, SIGTERM. The only addition is
the `Link` of services/chat/connection.py: the chat writes its already-encoded frames straight to
the socket's transport (as `websockets.broadcast()` does) instead of going through an ASGI
`send` per recipient, each a chain of coroutines through Starlette and uvicorn.

The app finds the protocol object in its websocket scope under `extensions[LINK]`.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState

from services.chat.frames import Outgoing

__all__ = ["LINK", "ChatWebSocketProtocol"]

LINK = "volano.chat.link"


class ChatWebSocketProtocol(WebSocketsSansIOProtocol):
    send_limit = 1 << 19  # bytes not yet taken by the peer before it counts as overloaded

    async def run_asgi(self) -> None:
        self.scope["extensions"][LINK] = self  # type: ignore[assignment]
        await super().run_asgi()

    def send_frame(self, frame: Outgoing) -> bool:
        if self.close_sent or self.disconnected:
            return True
        transport = self.transport
        if transport.get_write_buffer_size() > self.send_limit:
            return False
        transport.write(frame.wire)
        return True

    def close_after(self, code: int, reason: str) -> None:
        """What uvicorn does for an ASGI `websocket.close`, without waiting for the write
        buffer to drain (a client too slow to read would hold it forever): the close frame
        follows the frames written so far, the app's `receive` gets the disconnect at once, and
        a peer that does not answer the close within `close_timeout` is cut off."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        try:
            self.conn.send_close(code, reason)
        except InvalidState:  # the peer's close arrived first: its handler answers it
            return
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)
