"""The registry's error answers: 503 when NATS cannot be reached, 422 (never 400) for input it
cannot read, and 401 before either for a request without a valid token."""

from __future__ import annotations

import logging
from typing import Any

import nats.errors
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.registry.deps import header_token_ok, unauthorised
from services.registry.metrics import REGISTRATIONS
from shared.leases import RegistryBusyError

__all__ = ["install_error_handlers"]

log = logging.getLogger(__name__)

_REGISTERING = {("POST", "/v1/subscriptions"), ("GET", "/servlet/register")}


def _printable(value: Any) -> Any:
    """Strings made encodable as UTF-8 (a lone surrogate becomes "?"); other values as they are."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("NATS unavailable for %s %s: %r", request.method, request.url.path, exc)
    if (request.method, request.url.path) in _REGISTERING:
        REGISTRATIONS.labels("unavailable").inc()
    detail = "NATS is unavailable"
    if isinstance(exc, RegistryBusyError):
        detail = "another registry is changing this subscription; retry"
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "1"})


def install_error_handlers(app: FastAPI) -> None:
    default_http_handler = app.exception_handlers[StarletteHTTPException]

    async def http_error(request: Request, exc: Exception) -> Response:
        """FastAPI answers 400 to a body it cannot decode (not UTF-8); the API promises 422."""
        if isinstance(exc, StarletteHTTPException) and exc.status_code == 400:
            if not header_token_ok(request):
                return unauthorised()
            REGISTRATIONS.labels("malformed").inc()
            return JSONResponse(
                {
                    "detail": [
                        {
                            "loc": ["body"],
                            "msg": "body is not valid JSON text (UTF-8)",
                            "type": "json_invalid",
                        }
                    ]
                },
                status_code=422,
            )
        response: Response = await default_http_handler(request, exc)  # type: ignore[misc]
        return response

    async def invalid(request: Request, exc: Exception) -> Response:
        """FastAPI's 422 shape, without echoing the input: it may be large, and a lone
        surrogate in it cannot even be encoded (FastAPI's own handler would answer 500)."""
        if not header_token_ok(request):
            return unauthorised()
        if request.method == "POST" and request.url.path == "/v1/subscriptions":
            REGISTRATIONS.labels("malformed").inc()
        assert isinstance(exc, RequestValidationError)  # registered for that class only
        errors = [
            {
                "loc": [_printable(part) for part in error.get("loc", ())],
                "msg": _printable(error.get("msg", "")),
                "type": _printable(error.get("type", "")),
            }
            for error in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    for unavailable in (nats.errors.Error, RegistryBusyError, TimeoutError):
        app.add_exception_handler(unavailable, _unavailable)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
