"""A TCP proxy in front of one NATS node, for the chaos run: the services reach NATS only
through it, so the run can cut them off (every connection reset at once) or stall them (no
byte forwarded either way for a while, as a network that stops without closing anything).

While stalled, the proxy still accepts connections, but forwards nothing on them until the stall
ends; what was sent meanwhile is delivered then, in order.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["Proxy"]

CHUNK = 65536


class Proxy:
    """Listens on `port` (127.0.0.1) and forwards each connection to `target_port`."""

    def __init__(self, name: str, port: int, target_port: int) -> None:
        self.name = name
        self.port = port
        self.target_port = target_port
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()
        self._flowing.set()

    def cut(self) -> int:
        """Resets every connection through the proxy; returns how many there were."""
        writers = list(self._writers)
        for writer in writers:
            writer.transport.abort()
        self._writers.clear()
        return len(writers) // 2

    def stall(self, on: bool) -> None:
        """Stops (True) or resumes (False) forwarding on every connection."""
        if on:
            self._flowing.clear()
        else:
            self._flowing.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()  # the node is down: the client tries another
            return
        pair = {writer, up_writer}
        self._writers |= pair
        try:
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            self._writers -= pair
            for w in pair:
                w.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copies one direction until either side ends; then ends the other direction too."""
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(CHUNK):
                await self._flowing.wait()
                if writer.transport.is_closing():
                    break
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
