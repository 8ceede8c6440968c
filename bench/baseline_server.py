"""The baseline: the same JSON protocol subset (enter/entered, chat) with the `websockets`
library alone, no NATS, no FastAPI: the local speed limit of a Python chat on this machine.

`enter` answers `entered` with the members and sends `enter` to the others; `chat` is sent with
`broadcast()` to every member of the room, the sender included, as docs/websocket.md says.

Run: `python -m bench.baseline_server --port 8765`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench.util import install_uvloop, raise_nofile

__all__ = ["BaselineChat"]


class BaselineChat:
    def __init__(self) -> None:
        self.rooms: dict[str, dict[str, ServerConnection]] = {}

    async def handler(self, ws: ServerConnection) -> None:
        joined: dict[str, str] = {}  # room -> user name of this connection
        try:
            async for raw in ws:
                frame: dict[str, Any] = json.loads(raw)
                op = frame.get("op")
                room = str(frame.get("room", ""))
                if op == "chat" and room in joined:
                    out = {
                        "op": "chat",
                        "room": room,
                        "user": joined[room],
                        "message": frame.get("message", ""),
                    }
                    broadcast(self.rooms[room].values(), json.dumps(out, separators=(",", ":")))
                elif op == "enter":
                    user = str(frame.get("user", ""))
                    members = self.rooms.setdefault(room, {})
                    if user in members or room in joined:
                        await ws.send('{"op":"error","code":"name_taken","message":"taken"}')
                        continue
                    others = list(members.values())
                    members[user] = ws
                    joined[room] = user
                    listing = [{"user": u, "profile": "", "type": "non-member"} for u in members]
                    await ws.send(
                        json.dumps(
                            {"op": "entered", "room": room, "user": user, "members": listing}
                        )
                    )
                    enter = {
                        "op": "enter",
                        "room": room,
                        "user": user,
                        "profile": "",
                        "type": "non-member",
                    }
                    broadcast(others, json.dumps(enter, separators=(",", ":")))
                else:
                    await ws.send('{"op":"error","code":"bad_request","message":"unsupported"}')
        finally:
            for room, user in joined.items():
                members = self.rooms.get(room, {})
                members.pop(user, None)
                if not members:
                    self.rooms.pop(room, None)


async def serve_forever(host: str, port: int) -> None:
    chat = BaselineChat()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with serve(
        chat.handler, host, port, compression=None, max_queue=None, ping_interval=20, backlog=4096
    ):
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="baseline websockets chat server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args(argv)
    raise_nofile()
    if args.loop == "uvloop":
        install_uvloop()
    asyncio.run(serve_forever(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
