"""Member tokens (docs/websocket.md): HS256 JWTs with `sub` = member name and `role`.

`verify` is pure (key and clock in, identity out); `mint` makes one. Run as a program to mint:

    python -m services.chat.token USER --role ROLE [--minutes N]

with the key taken from `CHAT_JWT_SECRET`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from typing import Literal

import jwt

from services.chat.protocol import ChatError
from services.chat.settings import secret_problem
from shared.names import has_forbidden_name_characters

__all__ = [
    "ROLES",
    "Identity",
    "Role",
    "TokenError",
    "can_kick",
    "is_protected",
    "member_identity",
    "mint",
    "verify",
]

Role = Literal["member", "monitor", "admin"]
ROLES: tuple[Role, ...] = ("member", "monitor", "admin")

ALGORITHM = "HS256"


class TokenError(Exception):
    """A member token that is not accepted; the message says why, for the client."""


@dataclass(frozen=True, slots=True)
class Identity:
    name: str  # the member name, `sub`
    role: Role


def can_kick(role: Role | None) -> bool:
    """Monitors and admins may kick."""
    return role in ("monitor", "admin")


def is_protected(role: Role | None) -> bool:
    """Nobody may kick a monitor or an admin."""
    return role in ("monitor", "admin")


def mint(name: str, role: Role, secret: str, ttl_s: float | None = 24 * 3600) -> str:
    if not secret:
        raise ValueError("no secret: set CHAT_JWT_SECRET")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    now = int(time.time())
    claims: dict[str, object] = {"sub": name, "role": role, "iat": now}
    if ttl_s is not None:
        claims["exp"] = now + int(ttl_s)
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(token: str, secret: str, name_max: int | None = None) -> Identity:
    """The identity a token proves, or `TokenError`. An empty secret refuses every token; a
    name (trimmed) longer than `name_max` is not a valid name."""
    if not secret:
        raise TokenError("this server accepts no member tokens")
    if not token.isascii():  # a JWT is base64url and dots; PyJWT cannot even encode a surrogate
        raise TokenError("the member token is not valid")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "role"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("the member token has expired") from None
    except (jwt.InvalidTokenError, ValueError, TypeError):
        raise TokenError("the member token is not valid") from None
    name, role = claims.get("sub"), claims.get("role")
    if not isinstance(name, str) or not name.strip():
        raise TokenError("the member token names no member")
    if has_forbidden_name_characters(name):
        raise TokenError(
            "the member token's name has control, invisible or bidirectional-control characters"
        )
    if role not in ROLES:
        raise TokenError("the member token has an unknown role")
    name = name.strip()
    if name_max is not None and len(name) > name_max:
        raise TokenError("the member name in the token is not a valid name")
    return Identity(name, role)


def member_identity(token: str | None, secret: str, name_max: int) -> Identity | None:
    """Who an `enter` with this token is (None without a token); a token that proves no one
    is `ChatError("not_allowed")`, saying why, rather than a silent entry as a non-member."""
    if token is None:
        return None
    try:
        return verify(token, secret, name_max)
    except TokenError as exc:
        raise ChatError("not_allowed", str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.chat.token",
        description="Mint a member token, signed with CHAT_JWT_SECRET.",
    )
    parser.add_argument("user", help="the member name")
    parser.add_argument("--role", choices=ROLES, default="member")
    parser.add_argument(
        "--minutes", type=float, default=24 * 60, help="validity; 0 for no expiry (default a day)"
    )
    args = parser.parse_args(argv)
    secret = os.environ.get("CHAT_JWT_SECRET", "")
    problem = secret_problem(secret) if secret else "CHAT_JWT_SECRET is not set"
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    ttl = args.minutes * 60 if args.minutes > 0 else None
    print(mint(args.user.strip(), args.role, secret, ttl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
