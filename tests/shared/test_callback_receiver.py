"""shared/callback_receiver.py: the one receiver of the demo, the dev overlay, the benchmarks and
the tests answers as each of them relies on."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from shared.callback_receiver import (
    CallbackReceiver,
    Counter,
    Printer,
    ReceiverProtocol,
    RecordingProtocol,
    main,
    parse_head,
    serve,
)


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    r = CallbackReceiver()
    yield r
    r.close()


def test_records_path_lower_cased_headers_and_body(receiver: CallbackReceiver) -> None:
    answer = httpx.post(
        f"http://127.0.0.1:{receiver.port}/events/7",
        content=b"<chat/>\n",
        headers={"Webhook-Id": "sub_x_1", "Content-Type": "application/xml"},
    )
    assert answer.status_code == 200
    got = receiver.wait_for(1)
    assert len(got) == 1
    assert got[0].path == "/events/7"
    assert got[0].headers["webhook-id"] == "sub_x_1"
    assert got[0].headers["content-type"] == "application/xml"
    assert got[0].body == b"<chat/>\n"
    assert receiver.url == f"http://127.0.0.1:{receiver.port}/events"


def test_keeps_the_connection_alive_across_posts(receiver: CallbackReceiver) -> None:
    with httpx.Client() as client:
        for i in range(5):
            assert client.post(receiver.url, content=str(i).encode()).status_code == 200
    assert [r.body for r in receiver.wait_for(5)] == [b"0", b"1", b"2", b"3", b"4"]


def test_answers_the_status_and_a_location_for_3xx(receiver: CallbackReceiver) -> None:
    receiver.status = 302
    receiver.location = "http://127.0.0.1:9/there"
    answer = httpx.post(receiver.url, content=b"x")
    assert answer.status_code == 302
    assert answer.headers["location"] == "http://127.0.0.1:9/there"
    receiver.status = 500
    answer = httpx.post(receiver.url, content=b"x")
    assert answer.status_code == 500
    assert "location" not in answer.headers


def test_the_first_posts_are_dropped_without_an_answer() -> None:
    r = CallbackReceiver(drop_first=2)
    try:
        for _ in range(2):
            with pytest.raises(httpx.RemoteProtocolError):
                httpx.post(r.url, content=b"x")
        assert httpx.post(r.url, content=b"x").status_code == 200
        assert len(r.wait_for(3)) == 3  # the dropped ones are recorded too
    finally:
        r.close()


def test_a_delayed_answer_delays_no_other_connection() -> None:
    r = CallbackReceiver(delay_s=1.0)
    try:
        started = time.monotonic()
        threads = [
            threading.Thread(target=httpx.post, args=(r.url,), kwargs={"content": b"x"})
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        assert 1.0 <= elapsed < 3.0, elapsed  # four at once, not one after the other
        assert len(r.received) == 4
    finally:
        r.close()


def test_wait_for_returns_what_came_within_the_timeout(receiver: CallbackReceiver) -> None:
    assert receiver.wait_for(1, timeout=0.05) == []


def test_close_drops_the_answers_still_delayed_and_is_idempotent() -> None:
    r = CallbackReceiver(delay_s=3600)
    with socket.create_connection(("127.0.0.1", r.port)) as s:
        s.sendall(b"POST /events HTTP/1.1\r\nContent-Length: 1\r\n\r\nx")
        r.wait_for(1)
        r.close()
        s.settimeout(5)
        assert s.recv(100) == b""  # closed, no answer
    r.close()


def test_any_other_request_is_answered_the_count(receiver: CallbackReceiver) -> None:
    httpx.post(receiver.url, content=b"x")
    answer = httpx.get(f"http://127.0.0.1:{receiver.port}/count")
    assert (answer.status_code, answer.text) == (200, "1")


def test_parse_head() -> None:
    head = b"POST /a/b HTTP/1.1\r\nHost: h\r\nWebhook-Id:  w_1 \r\nX: 1\r\nx: 2"
    assert parse_head(head) == ("/a/b", {"host": "h", "webhook-id": "w_1", "x": "2"})


async def serve_once(
    factory: type[asyncio.Protocol] | object, requests: bytes, answers: int
) -> bytes:
    """`requests`, in pieces, to a server of `factory`; what comes back until `answers` HTTP
    answers (or the end of the connection)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0)  # type: ignore[arg-type]
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for i in range(0, len(requests), 7):  # split anywhere: the protocol reassembles
        writer.write(requests[i : i + 7])
        await writer.drain()
    got = b""
    while got.count(b"HTTP/1.1 ") < answers:
        chunk = await asyncio.wait_for(reader.read(4096), 5)
        if not chunk:
            break
        got += chunk
    writer.close()
    server.close()
    return got


POST = b"POST /e HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"


async def test_the_counting_protocol_counts_posts_and_answers_get_with_the_count() -> None:
    counter = Counter()
    got = await serve_once(
        lambda: ReceiverProtocol(counter), POST * 3 + b"GET / HTTP/1.1\r\n\r\n", 4
    )
    assert counter.count == 3
    assert got.count(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") == 3
    assert got.endswith(b"Content-Length: 1\r\n\r\n3")


async def test_close_answers_then_closes_the_connection() -> None:
    counter = Counter()
    got = await serve_once(lambda: ReceiverProtocol(counter, close=True), POST * 2, 2)
    assert counter.count == 1  # the second request came on a connection already closed
    assert got == b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


async def test_the_printer_prints_each_webhook_id_and_xml(
    capsys: pytest.CaptureFixture[str],
) -> None:
    printer = Printer()
    requests = (
        b"POST /e HTTP/1.1\r\nwebhook-id: s_1\r\nContent-Length: 8\r\n\r\n<chat/>\n"
        b"POST /e HTTP/1.1\r\nContent-Length: 5\r\n\r\n<a/>x"
    )
    got = await serve_once(lambda: RecordingProtocol(printer), requests, 2)
    assert got.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert capsys.readouterr().out == "s_1 <chat/>\n <a/>x\n"
    assert printer.count == 2 and printer.received == []  # a long-running demo keeps nothing


def test_main_serves_until_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[tuple[str, int, bool]] = []

    async def fake_serve(host: str, port: int, count_only: bool) -> None:
        served.append((host, port, count_only))

    monkeypatch.setattr("shared.callback_receiver.serve", fake_serve)
    assert main([]) == 0
    assert main(["--host", "0.0.0.0", "--port", "9100", "--count"]) == 0
    assert served == [("127.0.0.1", 9000, False), ("0.0.0.0", 9100, True)]


@pytest.mark.parametrize("count_only", [True, False])
async def test_serve_counts_or_prints(count_only: bool, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    task = asyncio.create_task(serve("127.0.0.1", port, count_only))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(50):
                try:
                    await client.post("/events", content=b"<x/>\n", headers={"webhook-id": "w_1"})
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.02)
            assert (await client.get("/")).text == "1"
    finally:
        task.cancel()
    printed = capsys.readouterr().out
    assert ("w_1 <x/>" in printed) is not count_only
