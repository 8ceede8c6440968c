"""Which callback URLs may register: VolanoChat's `event.callback.prefix`, done safely
(docs/registry-api.md).

Pure functions, no I/O. A URL and each prefix are parsed strictly and normalised the same way
(RFC 3986 §6.2.2: scheme and host lower-cased, default port dropped, percent-encoding of
unreserved characters decoded and the rest upper-cased, dot-segments resolved; also one
trailing dot of the host dropped), then compared *component by component*:

- scheme, host and port must be equal (hosts compare as normalised text: `127.1`, `0x7f.1`,
  `localhost` and `[::1]` are not `127.0.0.1`; IPv6 literals are written in RFC 5952 form);
- the path must lie under the prefix's path **on a segment boundary**: `http://h/cb` admits
  `http://h/cb`, `http://h/cb/x` and `http://h/cb?q`, never `http://h/cbx`. A prefix ending in
  `/` admits everything below it; a prefix with no path admits the whole origin.

VolanoChat compared raw strings with `startsWith`; that lets `http://h/cb` admit `http://h/cbx`
(on a shared host, someone else's page) and `http://hooks.example` admit
`http://hooks.example.evil.net/`. Comparing parsed components removes both tricks.

Anything outside strict RFC 3986 syntax is refused as malformed rather than guessed at: non-ASCII
text, white space, control characters, `\\`, `"`, `<`, `>`, `{`, `}`, `|`, `^`, a backquote,
broken percent-escapes, user-info, fragments, non-http(s) schemes, ports outside 1-65535,
percent-escapes or odd characters in the host, and URLs over 2048 characters. So is what a
server could decode into another path than the one compared: an encoded `/` or `\\` (`%2F`,
`%5C`) or control character in the path, and `..;`-style segments (Tomcat reads `/cb/..;/x` as
`/x`). What is admitted
is stored in its normalised form, so the dispatcher calls exactly the URL that was checked.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple

__all__ = ["MAX_URL_LENGTH", "PrefixList", "Url", "UrlError", "normalise_url", "parse_url"]

MAX_URL_LENGTH = 2048

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Every character RFC 3986 allows in a URI: unreserved, reserved (gen-delims, sub-delims), "%".
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%(.{0,2})")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?")
_PORT = re.compile(r"[0-9]{1,5}")
_ENCODED_SEPARATOR = re.compile(r"%(2F|5C)")
_ENCODED_CONTROL = re.compile(r"%([01][0-9A-F]|7F)")


class UrlError(ValueError):
    """The URL is malformed (422, or `malformed URL` on the servlet)."""


class Url(NamedTuple):
    """A normalised absolute http(s) URL. `port` is None for the scheme's default port."""

    scheme: str
    host: str  # lower-case name or IPv4 text, or an IPv6 literal in brackets
    port: int | None
    path: str  # starts with "/"
    query: str | None  # without the "?"; None when there is no "?"

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        query = "" if self.query is None else f"?{self.query}"
        return f"{self.scheme}://{self.host}{port}{self.path}{query}"


def _normalise_escapes(text: str) -> str:
    """Decode percent-escapes of unreserved characters, upper-case the hex of the others."""

    def repl(m: re.Match[str]) -> str:
        hex_ = m.group(1)
        if len(hex_) != 2 or not all(c in "0123456789abcdefABCDEF" for c in hex_):
            raise UrlError("URL has a malformed percent-escape")
        char = chr(int(hex_, 16))
        return char if char in _UNRESERVED else "%" + hex_.upper()

    return _PERCENT.sub(repl, text)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, for an absolute path."""
    out: list[str] = []
    segments = path.split("/")[1:]
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == ".":
            if last:
                out.append("")
        elif segment == "..":
            if out:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/" + "/".join(out)


def _check_path(path: str) -> None:
    """Refuse what a server might decode into a different path than the one we compared."""
    if _ENCODED_SEPARATOR.search(path):
        raise UrlError("URL path must not contain an encoded slash or backslash (%2F, %5C)")
    if _ENCODED_CONTROL.search(path):
        raise UrlError("URL must not contain percent-encoded control characters")
    if any(segment.split(";")[0] in (".", "..") for segment in path.split("/")):
        raise UrlError("URL path must not contain dot-segments with parameters (..;)")


def _host(text: str) -> str:
    if text.startswith("["):
        if not text.endswith("]"):
            raise UrlError("URL has a malformed IPv6 literal")
        try:
            address = ipaddress.IPv6Address(text[1:-1])
        except ValueError:
            raise UrlError("URL has a malformed IPv6 literal") from None
        return f"[{address.compressed}]"
    host = text.lower()
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise UrlError("URL has no host")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in host.split(".")):
        raise UrlError("URL host must be a DNS name, an IPv4 address or an [IPv6] literal")
    return host


def parse_url(text: str) -> Url:
    """Parse and normalise an absolute http(s) URL; `UrlError` says why one is refused."""
    if len(text) > MAX_URL_LENGTH:
        raise UrlError(f"URL is longer than {MAX_URL_LENGTH} characters")
    if not text.isascii() or not _URI_CHARS.fullmatch(text):
        raise UrlError(
            "URL contains characters a URL may not hold (white space, control or non-ASCII "
            'characters, or one of \\ " < > { } | ^ `): percent-encode them'
        )
    scheme_match = _SCHEME.match(text)
    if scheme_match is None or scheme_match.group(1).lower() not in _DEFAULT_PORTS:
        raise UrlError("URL must be absolute http or https")
    scheme = scheme_match.group(1).lower()
    rest = text[scheme_match.end() :]
    if not rest.startswith("//"):
        raise UrlError("URL must be absolute http or https (scheme://host/...)")
    if "#" in rest:
        raise UrlError("URL must not contain a fragment (#...)")
    rest = rest[2:]
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, rest = rest[:end], rest[end:]
    if "@" in authority:
        raise UrlError("URL must not contain user-info (user@ or user:password@)")
    if "%" in authority:
        raise UrlError("URL host must not contain percent-escapes")
    host_text, port_text = authority, ""
    bracket = authority.rfind("]")
    colon = authority.rfind(":")
    if colon > bracket:
        host_text, port_text = authority[:colon], authority[colon + 1 :]
    host = _host(host_text)
    port: int | None = None
    if port_text:
        if not _PORT.fullmatch(port_text) or not 0 < int(port_text) < 65536:
            raise UrlError("URL port must be a number from 1 to 65535")
        port = int(port_text)
    if port == _DEFAULT_PORTS[scheme]:
        port = None
    path, _, query_text = rest.partition("?")
    if "[" in rest or "]" in rest:
        raise UrlError("URL may hold [ and ] only around an IPv6 host: percent-encode them")
    query = _normalise_escapes(query_text) if "?" in rest else None
    path = _remove_dot_segments(_normalise_escapes(path)) if path else "/"
    _check_path(path)
    if query is not None and _ENCODED_CONTROL.search(query):
        raise UrlError("URL must not contain percent-encoded control characters")
    return Url(scheme, host, port, path, query)


def normalise_url(text: str) -> str:
    """The normal form of a URL as text (idempotent)."""
    return str(parse_url(text))


def _under(path: str, prefix_path: str) -> bool:
    """`path` lies under `prefix_path`, on a segment boundary."""
    if prefix_path.endswith("/"):
        return path.startswith(prefix_path)
    return path == prefix_path or path.startswith(prefix_path + "/")


class PrefixList:
    """The whitelist (`EVENT_CALLBACK_PREFIX`). Empty admits nothing, as in VolanoChat.

    Raises `UrlError` for a prefix that is not an absolute http(s) URL or has a query.
    """

    def __init__(self, spec: str) -> None:
        self.prefixes: list[Url] = []
        for raw in spec.split():
            try:
                prefix = parse_url(raw)
            except UrlError as exc:
                raise UrlError(f"prefix {raw!r}: {exc}") from None
            if prefix.query is not None:
                raise UrlError(f"prefix {raw!r}: a prefix must not contain a query (?...)")
            self.prefixes.append(prefix)

    def admits(self, url: str | Url) -> bool:
        """True if some prefix admits the URL. `UrlError` if the URL is malformed."""
        u = parse_url(url) if isinstance(url, str) else url
        return any(
            (u.scheme, u.host, u.port) == (p.scheme, p.host, p.port) and _under(u.path, p.path)
            for p in self.prefixes
        )
