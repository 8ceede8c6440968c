"""Registrations for the chaos run, made through the registry API like an integrator's: a
registry replica that is down or answers 5xx is retried, on the other one, until one answers
201 (or 200: registered already, e.g. when an earlier answer was lost to a fault)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx

__all__ = ["Registrar"]


class Registrar:
    def __init__(self, ports: list[int], token: str) -> None:
        self.ports = ports
        self.token = token
        self.rooms: dict[str, str] = {}  # registration id: room
        self.stats: Counter[str] = Counter()

    async def register(self, room: str, url: str, within_s: float = 120.0) -> str:
        """The registration's id, once a registry has stored it."""
        deadline = time.monotonic() + within_s
        headers = {"Authorization": f"Bearer {self.token}"}
        attempt = 0
        async with httpx.AsyncClient(timeout=10, headers=headers) as client:
            while time.monotonic() < deadline:
                port = self.ports[attempt % len(self.ports)]
                attempt += 1
                try:
                    answer = await client.post(
                        f"http://127.0.0.1:{port}/v1/subscriptions", json={"room": room, "url": url}
                    )
                except httpx.HTTPError as exc:
                    self.stats[f"retried: {type(exc).__name__}"] += 1
                    await asyncio.sleep(0.5)
                    continue
                if answer.status_code in (200, 201):
                    self.stats[f"answered {answer.status_code}"] += 1
                    sub_id = str(answer.json()["id"])
                    self.rooms[sub_id] = room
                    return sub_id
                if answer.status_code < 500:
                    raise RuntimeError(f"registering {url}: {answer.status_code} {answer.text}")
                self.stats[f"retried: {answer.status_code}"] += 1
                await asyncio.sleep(0.5)
        raise TimeoutError(f"no registry stored {url} for {room!r} within {within_s} s")

    async def why_ended(self, sub_id: str) -> str:
        """What the registry says of a registration that is gone (its 404 says why it ended)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        async with httpx.AsyncClient(timeout=10, headers=headers) as client:
            for port in self.ports:
                try:
                    answer = await client.get(f"http://127.0.0.1:{port}/v1/subscriptions/{sub_id}")
                except httpx.HTTPError:
                    continue
                return f"{answer.status_code} {answer.text}"
        return "no registry answered"
