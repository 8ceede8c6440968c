"""The URL-prefix whitelist (docs/registry-api.md): normalisation, matching, and a table of
hostile URLs."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.registry.prefix import (
    MAX_URL_LENGTH,
    PrefixList,
    UrlError,
    normalise_url,
    parse_url,
)

# --- normalisation -----------------------------------------------------------------------------

NORMALISED = [
    ("HTTP://Hooks.Example.COM/cb", "http://hooks.example.com/cb"),
    ("http://hooks.example.com", "http://hooks.example.com/"),
    ("http://hooks.example.com:80/cb", "http://hooks.example.com/cb"),
    ("https://hooks.example.com:443/cb", "https://hooks.example.com/cb"),
    ("https://hooks.example.com:80/cb", "https://hooks.example.com:80/cb"),
    ("http://hooks.example.com:0080/cb", "http://hooks.example.com/cb"),
    ("http://hooks.example.com:/cb", "http://hooks.example.com/cb"),
    ("http://hooks.example.com./cb", "http://hooks.example.com/cb"),
    ("http://h/a/./b/../c", "http://h/a/c"),
    ("http://h/a/b/../../..", "http://h/"),
    ("http://h/a/.", "http://h/a/"),
    ("http://h/%7Euser/%61%62c", "http://h/~user/abc"),
    ("http://h/a%3fb%3F", "http://h/a%3Fb%3F"),
    ("http://h/a;x=1/b", "http://h/a;x=1/b"),
    ("http://h/%2e%2E/x", "http://h/x"),
    ("http://h/cb?a=%7e&b=%2f", "http://h/cb?a=~&b=%2F"),
    ("http://h/cb?next=http://x/", "http://h/cb?next=http://x/"),
    ("http://h/cb?", "http://h/cb?"),
    ("http://[0:0:0:0:0:0:0:1]:8080/cb", "http://[::1]:8080/cb"),
    ("http://[::FFFF:127.0.0.1]/", "http://[::ffff:7f00:1]/"),
    ("http://127.1/", "http://127.1/"),
    ("http://0x7F.1/", "http://0x7f.1/"),
]


@pytest.mark.parametrize(("raw", "normal"), NORMALISED)
def test_normalise(raw: str, normal: str) -> None:
    assert normalise_url(raw) == normal
    assert normalise_url(normal) == normal


MALFORMED = [
    "",
    "hooks.example.com/cb",
    "//hooks.example.com/cb",
    "/cb",
    "http:hooks.example.com/cb",
    "http:/hooks.example.com/cb",
    "ftp://hooks.example.com/cb",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "gopher://127.0.0.1:25/",
    "ws://hooks.example.com/cb",
    "http:///cb",
    "http://:80/cb",
    "http://user@hooks.example.com/cb",
    "http://user:pw@hooks.example.com/cb",
    "http://@hooks.example.com/cb",
    "http://hooks.example.com/cb#frag",
    "http://hooks.example.com/cb#",
    "http://hooks.example.com:0/cb",
    "http://hooks.example.com:65536/cb",
    "http://hooks.example.com:8o/cb",
    "http://hooks.example.com:-1/cb",
    "http://hooks example.com/cb",
    "http://hooks.example.com/c b",
    "http://hooks.example.com/cb\n",
    "http://hooks.example.com/\x00",
    "http://hooks.example.com\\@evil.net/",
    "http://hooks.example.com/cb%",
    "http://hooks.example.com/cb%zz",
    "http://hooks.example.com/cb%4",
    "http://hooks%2eexample.com/cb",
    "http://hooks..example.com/cb",
    "http://.hooks.example.com/cb",
    "http://-hooks.example.com/cb",
    "http://hooks.example.com../cb",
    "http://[::1/cb",
    "http://[::1]x/cb",
    "http://[fe80::1%25eth0]/cb",
    "http://[127.0.0.1]/cb",
    "http://hooks.example.com/[x]",
    "http://hooks.example.com/a%2fb",
    "http://hooks.example.com/a%5Cb",
    "http://hooks.example.com/a%00b",
    "http://hooks.example.com/a?b=%0D%0A",
    "http://hooks.example.com/cb/..;/admin",
    "http://hooks.example.com/cb/.;x/admin",
    "http://h\u043e\u043eks.example.com/cb",  # Cyrillic o's
    "http://hooks.example.com/caf\u00e9",
    "http://" + "a" * 64 + ".com/",
    "http://h/" + "a" * MAX_URL_LENGTH,
]


@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed(raw: str) -> None:
    with pytest.raises(UrlError):
        parse_url(raw)


def test_longest_url_is_accepted() -> None:
    url = "http://h/" + "a" * (MAX_URL_LENGTH - len("http://h/"))
    assert normalise_url(url) == url


# --- matching ----------------------------------------------------------------------------------


def test_empty_admits_nothing() -> None:
    for spec in ("", "   ", "\n\t"):
        assert not PrefixList(spec).admits("http://127.0.0.1:9000/events")


def test_several_prefixes_separated_by_white_space() -> None:
    prefixes = PrefixList(" http://a.example/cb\thttps://b.example:8443\n http://c.example/x/ ")
    assert prefixes.admits("http://a.example/cb/1")
    assert prefixes.admits("https://b.example:8443/anything")
    assert prefixes.admits("http://c.example/x/y")
    assert not prefixes.admits("http://b.example:8443/")
    assert not prefixes.admits("http://c.example/x")


def test_path_prefix_is_segment_bounded() -> None:
    prefixes = PrefixList("http://h/cb")
    assert prefixes.admits("http://h/cb")
    assert prefixes.admits("http://h/cb/")
    assert prefixes.admits("http://h/cb/deeper/still")
    assert prefixes.admits("http://h/cb?token=1")
    assert not prefixes.admits("http://h/cbx")
    assert not prefixes.admits("http://h/cb.evil")
    assert not prefixes.admits("http://h/c")
    slash = PrefixList("http://h/cb/")
    assert slash.admits("http://h/cb/x")
    assert not slash.admits("http://h/cb")


def test_prefix_is_normalised_too() -> None:
    prefixes = PrefixList("HTTP://Hooks.Example:80/a/../cb/")
    assert [str(p) for p in prefixes.prefixes] == ["http://hooks.example/cb/"]
    assert prefixes.admits("http://hooks.example/cb/x")


@pytest.mark.parametrize(
    "spec",
    ["hooks.example.com", "ftp://h/", "http://u@h/", "http://h/?q=1", "http://h/#f", "http://"],
)
def test_bad_prefix_is_refused(spec: str) -> None:
    with pytest.raises(UrlError, match="prefix"):
        PrefixList(spec)


# The whitelist the hostile table is checked against: a host-only prefix, a host:port prefix, a
# path prefix, an IPv4 prefix and an IPv6 prefix.
WHITELIST = PrefixList(
    "http://hooks.example https://api.example:8443 http://app.example/cb "
    "http://127.0.0.1:9000/events http://[::1]:9000/"
)

HOSTILE = [
    # user-info tricks
    "http://hooks.example@evil.net/",
    "http://hooks.example:80@evil.net/",
    "http://evil.net@hooks.example/",
    "http://hooks.example%40evil.net/",
    "http://hooks.example\\@evil.net/",
    "http://hooks.example:@evil.net/",
    "http://app.example/cb@evil.net/",  # "@" in the path is harmless but not under /cb
    # look-alike hosts
    "http://hooks.example.evil.net/",
    "http://hooks.examplex/",
    "http://xhooks.example/",
    "http://evil-hooks.example/",
    "http://hooks.example.:8080/",
    "http://hooks.example..evil.net/",
    "http://hooks-example/",
    "http://h00ks.example/",
    "http://h\u043e\u043eks.example/",  # Cyrillic o's
    "http://xn--hks-qdda.example/",  # punycode of the look-alike
    "http://hooks.example%2eevil.net/",
    "http://hooks%2eexample/",
    # ports
    "http://hooks.example:8080/",
    "https://api.example/",
    "https://api.example:443/",
    "https://api.example:84430/",
    "https://api.example:8443.evil.net/",
    "http://api.example:8443/",
    # scheme
    "https://hooks.example/",
    "ftp://hooks.example/",
    "javascript://hooks.example/%0aalert(1)",
    "file://hooks.example/etc/passwd",
    "ws://hooks.example/",
    "//hooks.example/",
    "hooks.example/",
    # paths
    "http://app.example/cbx",
    "http://app.example/cb.evil",
    "http://app.example/cb/../admin",
    "http://app.example/cb/%2e%2e/admin",
    "http://app.example/cb/%2E%2E%2Fadmin",  # an encoded slash is not a separator: no ..
    "http://app.example/cb%2F../admin",
    "http://app.example/cb/..;/admin",
    "http://app.example/cb/%2e%2e;/admin",
    "http://app.example/cb/..%5Cadmin",
    "http://app.example/cb/%00/../../admin",
    "http://app.example/c%62x",
    "http://app.example/CB",
    "http://app.example//cb",
    "http://app.example/",
    # numeric IPv4 and IPv6 forms of the whitelisted 127.0.0.1 and ::1
    "http://127.1:9000/events",
    "http://0x7f.0.0.1:9000/events",
    "http://0x7f000001:9000/events",
    "http://2130706433:9000/events",
    "http://017700000001:9000/events",
    "http://0177.0.0.1:9000/events",
    "http://127.0.0.01:9000/events",
    "http://127.000.000.001:9000/events",
    "http://localhost:9000/events",
    "http://[::ffff:127.0.0.1]:9000/events",
    "http://[::1]:9000@127.0.0.1:9000/events",
    "http://127.0.0.1:9000@[::1]:9000/",
    "http://127.0.0.1:9000/eventsx",
    "http://127.0.0.1:90000/events",
    "http://127.0.0.1:9000%2fevents",
    "http://[::1]:9001/",
    "http://[::2]:9000/",
    "http://[0::1]:90/",
    "http://[::1]/",
    # fragments, white space, controls, over-long
    "http://hooks.example/#@evil.net",
    "http://hooks.example /",
    " http://hooks.example/",
    "http://hooks.example/\r\nX-Injected: 1",
    "http://hooks.example\t/",
    "http://hooks.example\x00.evil.net/",
    "http://hooks.example/" + "a" * MAX_URL_LENGTH,
]


def test_hostile_table_is_large_enough() -> None:
    assert len(HOSTILE) >= 40
    assert len(set(HOSTILE)) == len(HOSTILE)


@pytest.mark.parametrize("url", HOSTILE)
def test_hostile_url_is_refused(url: str) -> None:
    try:
        admitted = WHITELIST.admits(url)
    except UrlError:
        return  # refused as malformed
    assert not admitted, normalise_url(url)


ADMITTED = [
    "http://hooks.example/",
    "http://hooks.example",
    "HTTP://HOOKS.EXAMPLE/x",
    "http://hooks.example:80/x/y?z=1",
    "http://hooks.example./x",
    "https://api.example:8443/a",
    "http://app.example/cb",
    "http://app.example/cb/",
    "http://app.example/cb/x/../y",
    "http://app.example/x/../cb/",
    "http://app.example/%63b",
    "http://app.example/cb?next=http://evil.net/",
    "http://127.0.0.1:9000/events",
    "http://127.0.0.1:9000/events/1",
    "http://[::1]:9000/x",
    "http://[0:0::1]:9000/x",
]


@pytest.mark.parametrize("url", ADMITTED)
def test_admitted_url(url: str) -> None:
    assert WHITELIST.admits(url)


# --- properties --------------------------------------------------------------------------------

_label = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9\-]{0,8}[a-zA-Z0-9])?", fullmatch=True)
_host = st.lists(_label, min_size=1, max_size=4).map(".".join)
_segment = st.one_of(
    st.from_regex(r"[A-Za-z0-9\-._~!$&'()*+,;=:@]{0,8}", fullmatch=True).filter(
        lambda s: s.split(";")[0] not in (".", "..")  # `.;` and `..;` are refused (malformed)
    ),
    st.sampled_from([".", "..", "%2e", "%2E%2e", "%7E", "%3F", "%41", "a;p=1"]),
)
_path = st.lists(_segment, max_size=6).map(lambda s: "/" + "/".join(s))
_query = st.one_of(
    st.none(), st.from_regex(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?]{0,12}", fullmatch=True)
)


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "Https"]))
    host = draw(_host)
    port = draw(st.one_of(st.none(), st.integers(1, 65535).map(str), st.just("")))
    path = draw(st.one_of(st.just(""), _path))
    query = draw(_query)
    url = f"{scheme}://{host}"
    if port is not None:
        url += f":{port}"
    url += path
    if query is not None:
        url += f"?{query}"
    return url


@given(urls())
def test_normalisation_is_idempotent(url: str) -> None:
    once = normalise_url(url)
    assert normalise_url(once) == once
    assert parse_url(once) == parse_url(url)


@given(urls())
def test_normal_form_has_no_dot_segments_or_default_port(url: str) -> None:
    u = parse_url(url)
    assert u.scheme in ("http", "https")
    assert u.host == u.host.lower()
    assert u.port not in (80 if u.scheme == "http" else 443,)
    segments = u.path.split("/")
    assert "." not in segments
    assert ".." not in segments


@given(urls())
def test_case_of_scheme_and_host_does_not_matter(url: str) -> None:
    scheme, rest = url.split("://", 1)
    host_end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    swapped = scheme.swapcase() + "://" + rest[:host_end].swapcase() + rest[host_end:]
    assert normalise_url(swapped) == normalise_url(url)


@given(urls(), st.integers(0, 10_000))
def test_encoding_an_unreserved_character_does_not_matter(url: str, where: int) -> None:
    u = parse_url(url)
    path = u.path
    positions = [
        i for i, c in enumerate(path) if c.isalnum() and "%" not in path[max(0, i - 2) : i]
    ]
    if not positions:
        return
    i = positions[where % len(positions)]
    encoded = path[:i] + f"%{ord(path[i]):02x}" + path[i + 1 :]
    assert normalise_url(str(u._replace(path=encoded))) == str(u)


@given(urls())
def test_a_url_admits_itself_and_what_lies_under_it(url: str) -> None:
    u = parse_url(url)
    prefixes = PrefixList(str(u._replace(query=None)))
    assert prefixes.admits(url)
    below = u.path + ("sub" if u.path.endswith("/") else "/sub")
    assert prefixes.admits(str(u._replace(path=below, query="q")))


@given(urls(), _label)
def test_another_host_is_never_admitted(url: str, extra: str) -> None:
    u = parse_url(url)
    prefixes = PrefixList(str(u._replace(query=None, path="/")))
    for host in (f"{u.host}.{extra}", f"{extra}.{u.host}", f"{u.host}{extra}"):
        assert not prefixes.admits(str(u._replace(host=host.lower())))
    with pytest.raises(UrlError, match="user-info"):
        prefixes.admits(f"{u.scheme}://{u.host}@{extra}.example/")


@given(urls(), urls())
def test_admission_depends_only_on_the_normal_form(prefix: str, url: str) -> None:
    p = parse_url(prefix)
    prefixes = PrefixList(str(p._replace(query=None)))
    assert prefixes.admits(url) == prefixes.admits(normalise_url(url))
    if prefixes.admits(url):
        assert normalise_url(url).startswith(str(p._replace(query=None)).rstrip("/"))


@given(st.text(max_size=80) | st.from_regex(r"https?://[\x21-\x7e]{0,40}", fullmatch=True))
def test_anything_is_parsed_or_refused_as_malformed(text: str) -> None:
    try:
        normal = normalise_url(text)
    except UrlError:
        return
    assert normalise_url(normal) == normal


@given(urls())
def test_the_dispatchers_http_client_reads_the_normal_form_as_we_do(url: str) -> None:
    """What is stored is what is called: httpx sees the same host, port and path."""
    u = parse_url(url)
    seen = httpx.URL(str(u))
    assert seen.scheme == u.scheme
    assert seen.host == u.host.strip("[]")
    assert seen.port == u.port
    assert seen.raw_path.decode() == u.path + ("" if u.query is None else f"?{u.query}")
