"""`/healthz`, `/readyz` and `/metrics`, without a token: the routes every service shares."""

from __future__ import annotations

from fastapi import APIRouter

from shared.bus import BusHolder
from shared.service import health_router

__all__ = ["router"]


def router(holder: BusHolder) -> APIRouter:
    """Ready when the holder's NATS connection is up."""
    return health_router(holder.ready)
