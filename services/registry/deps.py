"""What the routes depend on, as `Annotated[..., Depends(...)]` aliases: the bearer-token check,
the NATS bus, and the `Registrar` that registers callbacks. Everything comes from `app.state`,
which `app.create_app` fills in. Every dependency is `async def` although none awaits: FastAPI
runs a plain `def` dependency in a worker thread, a thread hop per dependency per request."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.registry.history import History
from services.registry.ids import EXAMPLE_ID
from services.registry.registrar import Registrar
from services.registry.upkeep import Upkeep
from shared.bus import Bus, BusHolder

__all__ = [
    "UNAUTHORISED_DETAIL",
    "Auth",
    "BusDep",
    "HistoryDep",
    "RegistrarDep",
    "SubId",
    "UpkeepDep",
    "header_token_ok",
    "token_digests",
    "unauthorised",
]

UNAUTHORISED_DETAIL = "missing or wrong bearer token"

_bearer = HTTPBearer(
    auto_error=False, description="one of the operator's REGISTRY_API_TOKENS", scheme_name="token"
)


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def token_digests(tokens: list[str]) -> list[bytes]:
    """What `app.state.token_digests` holds: the tokens hashed, so that comparing them takes
    the same time whatever their length."""
    return [_digest(t.encode()) for t in tokens]


def _token_ok(request: Request, given_token: str) -> bool:
    tokens: list[bytes] = request.app.state.token_digests
    if not tokens:
        return True  # REGISTRY_ALLOW_NO_AUTH=true
    given = _digest(given_token.encode())
    matched = False
    for token in tokens:  # no early exit: which token matched does not show in the timing
        matched |= hmac.compare_digest(given, token)
    return matched


def header_token_ok(request: Request) -> bool:
    """The token check for answers made before the route's dependencies ran: FastAPI parses
    the JSON body first, and a stranger must get 401, not a critique of its JSON."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return _token_ok(request, token.strip() if scheme.lower() == "bearer" else "")


def unauthorised() -> JSONResponse:
    return JSONResponse(
        {"detail": UNAUTHORISED_DETAIL}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
    )


async def authorise(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Bearer token check, in constant time against every configured token."""
    if not _token_ok(request, credentials.credentials if credentials else ""):
        raise HTTPException(401, UNAUTHORISED_DETAIL, headers={"WWW-Authenticate": "Bearer"})


async def current_bus(request: Request) -> Bus:
    holder: BusHolder = request.app.state.holder
    bus = holder.bus
    if bus is None or not bus.connected:
        raise HTTPException(503, "NATS is unavailable", headers={"Retry-After": "1"})
    return bus


async def current_registrar(
    request: Request, bus: Annotated[Bus, Depends(current_bus)]
) -> Registrar:
    state = request.app.state
    return Registrar(bus, state.prefixes, state.settings.nats_replicas, state.upkeep)


async def current_upkeep(request: Request) -> Upkeep:
    upkeep: Upkeep = request.app.state.upkeep
    return upkeep


async def current_history(request: Request) -> History:
    history: History = request.app.state.history
    return history


Auth = Depends(authorise)
BusDep = Annotated[Bus, Depends(current_bus)]
RegistrarDep = Annotated[Registrar, Depends(current_registrar)]
UpkeepDep = Annotated[Upkeep, Depends(current_upkeep)]
HistoryDep = Annotated[History, Depends(current_history)]
SubId = Annotated[
    str, Path(description="the `id` the registration answered", examples=[EXAMPLE_ID])
]
