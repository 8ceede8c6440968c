"""Every call and error of docs/registry-api.md, in-process (httpx.ASGITransport) against a
real nats-server."""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from prometheus_client import REGISTRY

from services.registry.app import create_app
from services.registry.bodylimit import MAX_BODY_BYTES
from services.registry.settings import RegistrySettings
from shared.bus import Bus
from shared.events import ChatEvent, to_json
from shared.leases import REGISTRY_BUCKET
from shared.positions import position_key
from shared.subjects import EVENTS_STREAM, event_subject, room_token
from shared.subscriptions import get_subscription, subscription_id
from shared.sweep import sweep_orphans
from tests.conftest import NatsServer
from tests.registry.conftest import AUTH, ClientFactory

URL = "http://127.0.0.1:9000/events"
RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


async def consumers(bus: Bus) -> set[str]:
    """Every consumer of the events stream: a registration is not one (there are none)."""
    return {c.name for c in await bus.js.consumers_info(EVENTS_STREAM)}


async def last_seq(bus: Bus) -> int:
    return int((await bus.js.stream_info(EVENTS_STREAM)).state.last_seq)


async def post(client: httpx.AsyncClient, room: Any, url: Any) -> httpx.Response:
    return await client.post("/v1/subscriptions", json={"room": room, "url": url})


def metric(outcome: str) -> float:
    value = REGISTRY.get_sample_value("registry_registrations_total", {"outcome": outcome})
    return value or 0.0


# --- POST /v1/subscriptions --------------------------------------------------------------------


async def test_register_answers_201_with_secret_then_200_without(
    client: httpx.AsyncClient,
) -> None:
    first = await post(client, "Lobby", URL)
    assert first.status_code == 201, first.text
    body = first.json()
    assert set(body) == {"id", "room", "url", "secret", "created_at"}
    assert body["id"] == subscription_id("Lobby", URL)
    assert (body["room"], body["url"]) == ("Lobby", URL)
    assert RFC3339_UTC.fullmatch(body["created_at"])
    assert body["secret"].startswith("whsec_")
    assert len(base64.b64decode(body["secret"].removeprefix("whsec_"), validate=True)) == 32

    again = await post(client, "Lobby", URL)
    assert again.status_code == 200
    assert again.json() == {k: v for k, v in body.items() if k != "secret"}
    assert not await consumers(client.bus)  # type: ignore[attr-defined]


async def test_same_room_and_url_in_another_spelling_is_the_same_registration(
    client: httpx.AsyncClient,
) -> None:
    first = await post(client, "Lobby", URL)
    assert first.status_code == 201
    again = await post(client, "  Lobby\t", "HTTP://127.0.0.1:9000/x/../events")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    other_room = await post(client, "lobby", URL)
    assert other_room.status_code == 201
    assert other_room.json()["id"] != first.json()["id"]


async def test_room_rules_are_the_chat_services(client: httpx.AsyncClient) -> None:
    """Trimmed, then 1-100 characters: any name the chat service accepts can be registered."""
    for i, room in enumerate(["x" * 100, "\u3000" + "y" * 100 + " \t", "😀" * 100, "a.>", "*"]):
        response = await post(client, room, f"{URL}/{i}")
        assert response.status_code == 201, response.text
        assert response.json()["room"] == room.strip()
        listed = await client.get("/v1/subscriptions", params={"room": room})
        assert [item["room"] for item in listed.json()["items"]] == [room.strip()]


async def test_url_is_stored_in_normal_form(client: httpx.AsyncClient) -> None:
    response = await post(client, "R", "HTTPS://Hooks.Example.COM:443/a/./b/%7Euser")
    assert response.status_code == 201
    assert response.json()["url"] == "https://hooks.example.com/a/b/~user"


async def test_concurrent_registrations_of_one_pair_make_one(client: httpx.AsyncClient) -> None:
    answers = await asyncio.gather(*(post(client, "Busy", URL) for _ in range(12)))
    assert sorted(a.status_code for a in answers) == [200] * 11 + [201]
    assert len({a.json()["id"] for a in answers}) == 1


async def test_unauthorized_url_is_403_and_changes_nothing(client: httpx.AsyncClient) -> None:
    bus: Bus = client.bus  # type: ignore[attr-defined]
    before = metric("unauthorized_url")
    for url in ("http://127.0.0.1:9001/events", "http://hooks.example.com.evil.net/", URL + "x"):
        response = await post(client, "Lobby", url)
        assert response.status_code == 403
        assert response.json() == {"detail": "unauthorized URL"}
    assert metric("unauthorized_url") == before + 3
    assert (await client.get("/v1/subscriptions")).json()["items"] == []
    assert not await consumers(bus)


async def test_empty_whitelist_admits_nothing(make_client: ClientFactory) -> None:
    client = await make_client(event_callback_prefix="")
    response = await post(client, "Lobby", URL)
    assert response.status_code == 403


BAD_BODIES: list[tuple[Any, str]] = [
    ({"room": "", "url": URL}, "room"),
    ({"room": "   ", "url": URL}, "room"),
    ({"room": "x" * 101, "url": URL}, "room"),
    ({"room": " " + "x" * 101, "url": URL}, "room"),
    ({"room": "bell\x07", "url": URL}, "room"),
    ({"room": "new\nline", "url": URL}, "room"),
    ({"room": "nul\x00", "url": URL}, "room"),
    ({"room": "del\x7f", "url": URL}, "room"),
    ({"room": "c1\x85c1", "url": URL}, "room"),
    ({"room": "nonchar\uffff", "url": URL}, "room"),
    ({"room": 5, "url": URL}, "room"),
    ({"room": None, "url": URL}, "room"),
    ({"room": ["Lobby"], "url": URL}, "room"),
    ({"url": URL}, "room"),
    ({"room": "Lobby"}, "url"),
    ({"room": "Lobby", "url": ""}, "url"),
    ({"room": "Lobby", "url": 42}, "url"),
    ({"room": "Lobby", "url": "/events"}, "url"),
    ({"room": "Lobby", "url": "ftp://127.0.0.1:9000/events"}, "url"),
    ({"room": "Lobby", "url": "http://u:p@127.0.0.1:9000/events"}, "url"),
    ({"room": "Lobby", "url": URL + "#frag"}, "url"),
    ({"room": "Lobby", "url": URL + "/" + "a" * 2048}, "url"),
    ({"room": "Lobby", "url": "http://127.0.0.1:9000/ev ents"}, "url"),
    ({"room": "Lobby", "url": URL, "extra": 1}, "extra"),
    (["Lobby", URL], "body"),
    ("Lobby", "body"),
    (None, "body"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
async def test_bad_input_is_422_with_a_clear_message(
    client: httpx.AsyncClient, body: Any, field: str
) -> None:
    response = await client.post("/v1/subscriptions", json=body)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert errors and all(e["msg"] for e in errors)
    assert any(field in e["loc"] for e in errors), errors
    assert (await client.get("/v1/subscriptions")).json()["items"] == []
    assert not await consumers(client.bus)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b'{"room": "Lobby", "url": ',
        b"\xff\xfe",
        b"",
        b'{"room": "a"} x',
        b"\x10\x12\x14\xb0v",
    ],
)
async def test_malformed_json_is_422(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post(
        "/v1/subscriptions", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


async def test_lone_surrogate_in_room_is_422(client: httpx.AsyncClient) -> None:
    body = b'{"room": "lone \\ud800", "url": "' + URL.encode() + b'"}'
    response = await client.post(
        "/v1/subscriptions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert "control characters" in response.json()["detail"][0]["msg"]
    extra = b'{"room": "a", "url": "' + URL.encode() + b'", "\\udc00": 1}'
    response = await client.post(
        "/v1/subscriptions", content=extra, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "body"  # 422, not a 500 on encoding it


async def test_room_messages_say_what_is_wrong(client: httpx.AsyncClient) -> None:
    long_ = (await post(client, "x" * 101, URL)).json()["detail"][0]["msg"]
    control = (await post(client, "a\x07", URL)).json()["detail"][0]["msg"]
    user_info = (await post(client, "a", "http://u@127.0.0.1:9000/events")).json()
    assert "100 characters" in long_
    assert "control characters" in control
    assert "user-info" in user_info["detail"][0]["msg"]


async def test_body_over_the_cap_is_413(client: httpx.AsyncClient) -> None:
    body = b'{"room": "Lobby", "url": "' + b"a" * MAX_BODY_BYTES + b'"}'
    response = await client.post(
        "/v1/subscriptions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]

    async def chunked() -> Any:  # no content-length: the cap counts what arrives
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b" " * 1024

    response = await client.post(
        "/v1/subscriptions", content=chunked(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


# --- GET and DELETE /v1/subscriptions/{id} -----------------------------------------------------


async def test_get_and_delete(client: httpx.AsyncClient) -> None:
    bus: Bus = client.bus  # type: ignore[attr-defined]
    created = (await post(client, "Lobby", URL)).json()
    got = await client.get(f"/v1/subscriptions/{created['id']}")
    assert got.status_code == 200
    assert got.json() == {k: v for k, v in created.items() if k != "secret"}

    deleted = await client.delete(f"/v1/subscriptions/{created['id']}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert not await consumers(bus)
    ended = await client.get(f"/v1/subscriptions/{created['id']}")
    assert ended.status_code == 404
    body = ended.json()
    assert RFC3339_UTC.fullmatch(body.pop("ended_at"))
    assert body == {
        "detail": "ended",
        "id": created["id"],
        "room": "Lobby",
        "url": URL,
        "reason": "deleted",
        "status": None,
        "last_webhook_id": None,
    }
    again = await client.delete(f"/v1/subscriptions/{created['id']}")
    assert again.status_code == 404
    assert again.json() == {"detail": "not found"}
    assert (await client.get("/v1/subscriptions", params={"room": "Lobby"})).json()["items"] == []

    renewed = await post(client, "Lobby", URL)  # same id, a new secret
    assert renewed.status_code == 201
    assert renewed.json()["id"] == created["id"]
    assert renewed.json()["secret"] != created["secret"]


@pytest.mark.parametrize(
    "sub_id", ["sub_aaaaaaaaaaaaaaaaaaaaaaaa", "nope", "sub_", "sub_..", "x" * 300, "sub_a%2Fb"]
)
async def test_unknown_id_is_404(client: httpx.AsyncClient, sub_id: str) -> None:
    for answer in (
        await client.get(f"/v1/subscriptions/{sub_id}"),
        await client.delete(f"/v1/subscriptions/{sub_id}"),
        await client.get(f"/v1/subscriptions/{sub_id}/attempts"),
    ):
        assert answer.status_code == 404
        if "/" not in unquote(sub_id):  # else no route matches at all
            assert answer.json() == {"detail": "not found"}


async def test_an_ended_registration_is_told_for_events_max_age_s(
    make_client: ClientFactory,
) -> None:
    client = await make_client(events_max_age_s="1")
    created = (await post(client, "Lobby", URL)).json()
    assert (await client.delete(f"/v1/subscriptions/{created['id']}")).status_code == 204
    ended = await client.get(f"/v1/subscriptions/{created['id']}")
    assert ended.json()["detail"] == "ended"
    attempts = await client.get(f"/v1/subscriptions/{created['id']}/attempts")
    assert attempts.json() == {"items": [], "next": None}
    for _ in range(50):
        await asyncio.sleep(0.1)
        ended = await client.get(f"/v1/subscriptions/{created['id']}")
        if ended.json() == {"detail": "not found"}:
            break
    assert (ended.status_code, ended.json()) == (404, {"detail": "not found"})


async def test_a_malformed_since_is_422_and_changes_nothing(client: httpx.AsyncClient) -> None:
    for since in ("", "yesterday", "2026-11-25T16:18:42", "sub_x_1", 12, None, "9" * 65):
        body = {"room": "Lobby", "url": URL, "since": since}
        answer = await client.post("/v1/subscriptions", json=body)
        if since is None:  # null is the same as absent
            assert answer.status_code == 201 and "replay_from" not in answer.json()
            assert (
                await client.delete(f"/v1/subscriptions/{answer.json()['id']}")
            ).status_code == 204
            continue
        assert answer.status_code == 422, since
        assert answer.json()["detail"][0]["loc"] == ["body", "since"]
    assert (await client.get("/v1/subscriptions")).json()["items"] == []


async def test_since_sets_start_seq_within_what_is_held(client: httpx.AsyncClient) -> None:
    bus: Bus = client.bus  # type: ignore[attr-defined]
    for n in range(5):
        await bus.js.publish(
            event_subject("Lobby", "chat"), to_json(ChatEvent("Lobby", "u", f"m{n}"))
        )
    await bus.js.publish(event_subject("Other", "chat"), to_json(ChatEvent("Other", "u", "x")))
    sub_id = subscription_id("Lobby", URL)
    cases = [
        (f"{sub_id}_2", 2, True),  # after sequence 2
        (f"{sub_id}_99", 6, False),  # not stored yet: from the end, nothing skipped
        ("1999-01-01T00:00:00Z", 0, True),  # the oldest held
        ("2999-01-01T00:00:00Z", 6, False),
    ]
    for since, start, replays in cases:
        answer = await client.post(
            "/v1/subscriptions", json={"room": "Lobby", "url": URL, "since": since}
        )
        assert answer.status_code == 201, answer.text
        assert (answer.json()["replay_from"] is not None) is replays, since
        sub = await get_subscription(bus, sub_id)
        assert sub is not None and sub.start_seq == start, since
        assert (await client.delete(f"/v1/subscriptions/{sub_id}")).status_code == 204


# --- GET /v1/subscriptions ---------------------------------------------------------------------


async def test_list_pages_through_everything_once_in_creation_order(
    client: httpx.AsyncClient,
) -> None:
    made = [(await post(client, f"Room {i % 3}", f"{URL}/{i}")).json()["id"] for i in range(8)]
    await client.delete(f"/v1/subscriptions/{made[2]}")
    expected = [m for m in made if m != made[2]]

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/subscriptions", params=params)).json()
        assert len(page["items"]) <= 3
        assert all("secret" not in item for item in page["items"])
        seen += [item["id"] for item in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == expected

    everything = (await client.get("/v1/subscriptions", params={"limit": 100})).json()
    assert [i["id"] for i in everything["items"]] == expected
    assert everything["next"] is None


async def test_list_by_room(client: httpx.AsyncClient) -> None:
    rooms = ["a.>", "a", "*", "a b", "ä"]
    for i, room in enumerate(rooms):
        assert (await post(client, room, f"{URL}/{i}")).status_code == 201
        assert (await post(client, room, f"{URL}/{i}b")).status_code == 201
    for room in rooms:
        page = (await client.get("/v1/subscriptions", params={"room": room})).json()
        assert {item["room"] for item in page["items"]} == {room}
        assert len(page["items"]) == 2
    first = (await client.get("/v1/subscriptions", params={"room": "a", "limit": 1})).json()
    assert len(first["items"]) == 1 and first["next"]
    second = await client.get(
        "/v1/subscriptions", params={"room": "a", "limit": 1, "cursor": first["next"]}
    )
    assert [i["url"] for i in first["items"] + second.json()["items"]] == [
        f"{URL}/1",
        f"{URL}/1b",
    ]
    wrong = await client.get("/v1/subscriptions", params={"room": "a.>", "cursor": first["next"]})
    assert wrong.status_code == 422
    assert "another listing" in wrong.json()["detail"][0]["msg"]
    none = (await client.get("/v1/subscriptions", params={"room": "nobody"})).json()
    assert none == {"items": [], "next": None}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "ten"},
        {"cursor": "not-a-cursor"},
        {"cursor": "MTI"},
        {"cursor": "x" * 300},
        {"room": ""},
        {"room": "x" * 101},
        {"room": "a\x01"},
    ],
)
async def test_bad_list_parameters_are_422(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    response = await client.get("/v1/subscriptions", params=params)
    assert response.status_code == 422, response.text


# --- GET /servlet/register ---------------------------------------------------------------------


async def test_servlet_registers_with_plain_text_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/servlet/register", params={"room": "Lobby", "href": URL})
    assert response.status_code == 200
    assert response.text == "\n"
    assert response.headers["content-type"].startswith("text/plain")
    # the same registration as the REST call's, and idempotent
    assert (await client.get("/servlet/register", params={"room": "Lobby", "href": URL})).text == (
        "\n"
    )
    assert (await post(client, "Lobby", URL)).status_code == 200
    assert len((await client.get("/v1/subscriptions")).json()["items"]) == 1


@pytest.mark.parametrize(
    ("params", "answer"),
    [
        ({"href": URL}, "no room name"),
        ({"room": "", "href": URL}, "no room name"),
        ({"room": "  ", "href": URL}, "no room name"),
        ({"room": "x" * 101, "href": URL}, "no room name"),
        ({"room": "a\x07", "href": URL}, "no room name"),
        ({"room": "Lobby"}, "no callback URL"),
        ({"room": "Lobby", "href": ""}, "no callback URL"),
        ({"room": "Lobby", "href": "127.0.0.1:9000/events"}, "malformed URL"),
        ({"room": "Lobby", "href": "http://u@127.0.0.1:9000/events"}, "malformed URL"),
        ({"room": "Lobby", "href": "javascript:alert(1)"}, "malformed URL"),
        ({"room": "Lobby", "href": "http://127.0.0.1:9000/eventsx"}, "unauthorized URL"),
        ({"room": "Lobby", "href": "http://hooks.example.com.evil.net/"}, "unauthorized URL"),
    ],
)
async def test_servlet_refusals(
    client: httpx.AsyncClient, params: dict[str, str], answer: str
) -> None:
    response = await client.get("/servlet/register", params=params)
    assert response.status_code == 400
    assert response.text == answer
    assert response.headers["content-type"].startswith("text/plain")
    assert (await client.get("/v1/subscriptions")).json()["items"] == []


@pytest.mark.parametrize(
    ("query", "answer"),
    [
        (f"room=Caf%E9&href={URL}", "no room name"),
        (f"room=%FF%FE&href={URL}", "no room name"),
        ("room=Lobby&href=http://127.0.0.1:9000/ev%E9nts", "malformed URL"),
    ],
)
async def test_servlet_refuses_parameters_that_are_not_utf8(
    client: httpx.AsyncClient, query: str, answer: str
) -> None:
    """Latin-1 `Caf%E9` is not registered as `Caf\ufffd`: the bytes are not UTF-8."""
    response = await client.get(f"/servlet/register?{query}")
    assert (response.status_code, response.text) == (400, answer)
    assert (await client.get("/v1/subscriptions")).json()["items"] == []
    utf8 = await client.get(f"/servlet/register?room=Caf%C3%A9&href={URL}")
    assert (utf8.status_code, utf8.text) == (200, "\n")
    (item,) = (await client.get("/v1/subscriptions")).json()["items"]
    assert item["room"] == "Café"


# --- auth --------------------------------------------------------------------------------------

PROTECTED = [
    ("POST", "/v1/subscriptions"),
    ("GET", "/v1/subscriptions"),
    ("GET", "/v1/subscriptions/sub_aaaaaaaaaaaaaaaaaaaaaaaa"),
    ("DELETE", "/v1/subscriptions/sub_aaaaaaaaaaaaaaaaaaaaaaaa"),
    ("GET", f"/servlet/register?room=Lobby&href={URL}"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong",
        "Basic cmVnaXN0cnk=",
        AUTH["Authorization"] + "x",
    ],
)
async def test_every_api_route_needs_a_token(
    client: httpx.AsyncClient, method: str, path: str, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization is not None else {}
    client.headers.pop("authorization")
    response = await client.request(
        method, path, headers=headers, json={"room": "Lobby", "url": URL}
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert (await client.get("/v1/subscriptions", headers=AUTH)).json()["items"] == []


@pytest.mark.parametrize("raw", [b"{bad", b"\x10\x12\xb0", b'{"room": ""}'])
async def test_a_stranger_gets_401_not_a_critique_of_its_body(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    client.headers.pop("authorization")
    for headers in ({}, {"authorization": "Bearer wrong"}):
        response = await client.post(
            "/v1/subscriptions",
            content=raw,
            headers={"content-type": "application/json", **headers},
        )
        assert response.status_code == 401, response.text
    bad_query = await client.get("/v1/subscriptions", params={"limit": 0})
    assert bad_query.status_code == 401


async def test_health_and_docs_need_no_token(client: httpx.AsyncClient) -> None:
    client.headers.pop("authorization")
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
        assert (await client.get(path)).status_code == 200, path


async def test_any_of_several_tokens(make_client: ClientFactory) -> None:
    tokens = [f"{name}-token-{'x' * 32}" for name in ("first", "second", "third")]
    client = await make_client(registry_api_tokens=f"{tokens[0]}, {tokens[1]} ,{tokens[2]}")
    for token in tokens:
        response = await client.get(
            "/v1/subscriptions", headers={"authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200
    both = f"Bearer {tokens[0]},{tokens[1]}"
    bad = await client.get("/v1/subscriptions", headers={"authorization": both})
    assert bad.status_code == 401


async def test_no_auth_only_when_explicitly_allowed(make_client: ClientFactory) -> None:
    client = await make_client(registry_api_tokens="", registry_allow_no_auth="true")
    client.headers.pop("authorization")
    assert (await client.get("/v1/subscriptions")).status_code == 200


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"registry_api_tokens": ""}, "REGISTRY_API_TOKENS is empty"),
        ({"registry_api_tokens": " , "}, "REGISTRY_API_TOKENS is empty"),
        ({"registry_api_tokens": "ok,change-me-please"}, "placeholder"),
        ({"registry_api_tokens": "t" * 31}, "at least 32 characters"),
        ({"registry_api_tokens": f"{'t' * 32},short"}, "at least 32 characters"),
        ({"registry_api_tokens": "t" * 32, "event_callback_prefix": "hooks.example"}, "PREFIX"),
        ({"registry_api_tokens": "t" * 32, "event_callback_prefix": "http://u@h/"}, "PREFIX"),
    ],
)
def test_refuses_to_start(settings: dict[str, str], message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        create_app(RegistrySettings(**settings))  # type: ignore[arg-type]


# --- NATS trouble, halfway failures, metrics ---------------------------------------------------


async def test_nats_down_is_503(make_client: ClientFactory, nats_server: NatsServer) -> None:
    client = await make_client(nats_url=nats_server.url)  # a server of its own, to stop
    nats_server.stop()
    for _ in range(50):
        if not client.bus.connected:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.1)
    calls = [
        client.post("/v1/subscriptions", json={"room": "Lobby", "url": URL}),
        client.get("/v1/subscriptions"),
        client.get("/v1/subscriptions/sub_aaaaaaaaaaaaaaaaaaaaaaaa"),
        client.delete("/v1/subscriptions/sub_aaaaaaaaaaaaaaaaaaaaaaaa"),
        client.get("/servlet/register", params={"room": "Lobby", "href": URL}),
        client.get("/readyz"),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 503, response.text
    assert (await client.get("/healthz")).status_code == 200


async def test_a_registration_starts_after_the_events_stored_before_its_answer(
    client: httpx.AsyncClient,
) -> None:
    """In force from the 201 and not before: its start is the stream's last sequence when it
    was stored, so an event from before the answer is never delivered to it."""
    bus: Bus = client.bus  # type: ignore[attr-defined]
    await bus.js.publish(
        event_subject("Lobby", "chat"), to_json(ChatEvent("Lobby", "old", "before"))
    )
    before = await last_seq(bus)
    response = await post(client, "Lobby", URL)
    assert response.status_code == 201
    stored = await get_subscription(bus, response.json()["id"])
    assert stored is not None
    assert stored.start_seq == before == 1


async def test_sweep_removes_orphans_only(client: httpx.AsyncClient) -> None:
    """An index key whose entry never came, and a position whose registration is gone."""
    bus: Bus = client.bus  # type: ignore[attr-defined]
    kept = (await post(client, "Lobby", URL)).json()["id"]
    orphan = subscription_id("Elsewhere", URL)
    registry = await bus.js.key_value(REGISTRY_BUCKET)
    await registry.put(f"room.{room_token('Elsewhere')}.{orphan}", orphan.encode())
    await bus.positions.put(position_key("Elsewhere", orphan), b'{"seq": 1, "entry": 1}')
    await bus.positions.put(position_key("Lobby", kept), b'{"seq": 1, "entry": 1}')
    assert await sweep_orphans(bus, min_age_s=3600) == 0  # too young to be an orphan
    assert await sweep_orphans(bus, min_age_s=0) == 2
    assert await registry.keys() == [f"room.{room_token('Lobby')}.{kept}"]
    assert await bus.positions.keys() == [position_key("Lobby", kept)]
    assert (await client.get(f"/v1/subscriptions/{kept}")).status_code == 200


async def test_metrics_count_outcomes(client: httpx.AsyncClient) -> None:
    created, existing, malformed = metric("created"), metric("existing"), metric("malformed")
    await post(client, "Lobby", URL)
    await post(client, "Lobby", URL)
    await post(client, "", URL)
    await client.get("/servlet/register", params={"room": "Lobby", "href": "nope"})
    assert metric("created") == created + 1
    assert metric("existing") == existing + 1
    assert metric("malformed") == malformed + 2
    text = ""
    for _ in range(50):  # the current count is refreshed in the background
        text = (await client.get("/metrics")).text
        if "registry_subscriptions 1.0" in text:
            break
        await asyncio.sleep(0.1)
    assert "registry_subscriptions 1.0" in text
