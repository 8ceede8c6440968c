"""What every service's HTTP side has in common: JSON logs, health, readiness, metrics, run."""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.settings import CommonSettings

__all__ = ["JsonFormatter", "configure_logging", "health_router", "run"]


class JsonFormatter(logging.Formatter):
    """One JSON object a line: what log shippers on Kubernetes expect."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def health_router(is_ready: Callable[[], bool]) -> APIRouter:
    """`/healthz` (the process answers), `/readyz` (NATS reachable), `/metrics` (Prometheus)."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process is up; checks nothing outside it")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: NATS is reachable",
        response_class=PlainTextResponse,
        responses={503: {"description": "NATS unreachable", "content": {"text/plain": {}}}},
    )
    async def readyz() -> Response:
        if is_ready():
            return PlainTextResponse("ready\n")
        return PlainTextResponse("not ready: NATS unreachable\n", status_code=503)

    @router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def run(app: FastAPI, settings: CommonSettings, port: int, **uvicorn_options: Any) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully (uvicorn runs the lifespan exit)
    within `SHUTDOWN_GRACE_S`. uvicorn's own X-Forwarded-For handling is off: only the chat
    reads that header, and only from its trusted proxies."""
    configure_logging(settings.log_level)
    uvicorn.run(
        app,
        host=settings.bind_host,
        port=port,
        log_config=None,
        timeout_graceful_shutdown=max(1, math.ceil(settings.shutdown_grace_s)),
        proxy_headers=False,
        **uvicorn_options,
    )
