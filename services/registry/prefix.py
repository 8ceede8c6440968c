"""Which callback URLs may register: VolanoChat's `event.callback.prefix`, done safely (SPEC §3).

A URL and each prefix are normalised the same way, then compared. A prefix that ends in its
authority (host or port, no path) admits only that exact scheme, host and port.
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import SplitResult, urlsplit

__all__ = ["PrefixList", "UrlError", "normalise_url"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


class UrlError(ValueError):
    """The URL is malformed (SPEC: 422, or `malformed URL` on the servlet)."""


def _decode_unreserved(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        char = chr(int(m.group(1), 16))
        return char if char in _UNRESERVED_CHARS else "%" + m.group(1).upper()

    return _UNRESERVED.sub(repl, text)


def _split(url: str) -> SplitResult:
    if any(c.isspace() or ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise UrlError("URL contains white space or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlError(f"malformed URL: {exc}") from None
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise UrlError("URL must be absolute http or https")
    if not parts.hostname:
        raise UrlError("URL has no host")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UrlError("URL must not contain user-info")
    if port == 0:
        raise UrlError("URL port must not be 0")
    return parts


def normalise_url(url: str) -> str:
    """Scheme and host lower-cased, default port dropped, dot-segments resolved,
    unreserved percent-escapes decoded, trailing dot of the host dropped."""
    parts = _split(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _decode_unreserved(parts.path)
    if path:
        resolved = posixpath.normpath(path)
        if resolved.startswith("//"):
            resolved = "/" + resolved.lstrip("/")
        if path.endswith("/") and resolved != "/":
            resolved += "/"
        path = resolved
    else:
        path = "/"
    query = f"?{_decode_unreserved(parts.query)}" if parts.query else ""
    return f"{scheme}://{netloc}{path}{query}"


class PrefixList:
    """The whitelist. Empty admits nothing, as in VolanoChat.

    A prefix with no path normalises to `scheme://host[:port]/`, so it admits exactly that
    authority and never `host.evil.net` or `host@evil.net`.
    """

    def __init__(self, spec: str) -> None:
        self.prefixes = [normalise_url(raw) for raw in spec.split()]

    def admits(self, url: str) -> bool:
        normal = normalise_url(url)
        return any(normal.startswith(prefix) for prefix in self.prefixes)
