"""1,000 random, mostly malformed frames against two live chat replicas sharing rooms: each
answers every frame with a proper frame, both stay up, and they keep serving a well-behaved pair
of clients, one on each (hypothesis)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.chat.wsclient import start_together
from tests.conftest import Service, System

pytestmark = pytest.mark.e2e

SERVER_OPS = {"entered", "enter", "exit", "chat", "ring", "kick", "error"}
ERROR_CODES = {
    "bad_request",
    "name_taken",
    "member_taken",
    "room_full",
    "no_such_room",
    "not_in_room",
    "not_allowed",
    "banned",
    "too_long",
    "rate_limited",
    "unavailable",
}


@dataclass
class Collector:
    """Reads every frame a connection gets, in a thread of its own."""

    ws: ClientConnection
    frames: list[Any] = field(default_factory=list)
    closed: BaseException | None = None
    cond: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            for message in self.ws:
                with self.cond:
                    self.frames.append(json.loads(message))
                    self.cond.notify_all()
        except ConnectionClosed as exc:
            self.closed = exc
        with self.cond:
            self.closed = self.closed or ConnectionClosed(None, None)
            self.cond.notify_all()

    def wait_for(self, predicate: Any, timeout: float = 15.0) -> Any:
        with self.cond:
            self.cond.wait_for(
                lambda: any(predicate(f) for f in self.frames) or self.closed is not None,
                timeout,
            )
            return next((f for f in self.frames if predicate(f)), None)


@pytest.fixture(scope="module")
def chats(module_system: System) -> Iterator[list[Service]]:
    replicas = [module_system.service("chat", CHAT_ROOM_LIMIT="5") for _ in range(2)]
    start_together(*replicas)
    yield replicas


names = st.one_of(
    st.sampled_from(["Calm", "Lobby", "a", " b ", "", "x" * 21, "ann", "bob"]),
    st.text(max_size=25),
)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
fields = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values,
        "room": names | json_values,
        "user": names | json_values,
        "to": names | json_values,
        "message": st.text(max_size=500) | json_values,
        "profile": st.text(max_size=500) | json_values,
        "token": st.text(max_size=60) | json_values,
        "type": st.sampled_from(["remove", "disconnect", "ban", "kick"]) | json_values,
    },
)
requests = st.builds(
    lambda op, rest: json.dumps({"op": op, **rest}) if op is not None else json.dumps(rest),
    st.one_of(st.none(), st.sampled_from(["enter", "chat", "ring", "kick", "exit"]), json_values),
    fields,
)
frames = st.one_of(
    requests,
    requests.map(lambda s: s[: len(s) // 2]),  # cut short
    st.text(max_size=300),
    st.binary(max_size=300),
    json_values.map(json.dumps),
)


def test_random_frames_never_hurt_the_replicas(chats: list[Service]) -> None:
    one, two = (f"ws://127.0.0.1:{chat.port}/ws" for chat in chats)
    with (
        connect(one) as ann,
        connect(two) as bob,
        connect(one, max_size=None) as fuzz_one,
        connect(two, max_size=None) as fuzz_two,
    ):
        calm = [Collector(ann), Collector(bob)]
        fuzzers = [Collector(fuzz_one), Collector(fuzz_two)]
        for c in (*calm, *fuzzers):
            c.start()
        ann.send(json.dumps({"op": "enter", "room": "Calm", "user": "ann"}))
        bob.send(json.dumps({"op": "enter", "room": "Calm", "user": "bob"}))
        for c in calm:
            assert c.wait_for(lambda f: f["op"] == "entered")

        made: list[str | bytes] = []

        @settings(
            max_examples=1000,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(frame=frames)
        def make(frame: str | bytes) -> None:
            made.append(frame)

        make()
        assert len(made) >= 1000
        for i, frame in enumerate(made):  # the two replicas' fuzzers take turns
            (fuzz_one, fuzz_two)[i % 2].send(frame)

        for fuzz, fuzzer in zip((fuzz_one, fuzz_two), fuzzers, strict=True):
            fuzz.send(json.dumps({"op": "exit", "room": "sentinel", "id": "done"}))
            assert fuzzer.wait_for(lambda f: f.get("id") == "done"), fuzzer.closed
            assert fuzzer.closed is None  # the connection stayed usable throughout
        errors = [f for fuzzer in fuzzers for f in fuzzer.frames if f["op"] == "error"]
        assert len(errors) >= len(made) // 2  # most of it is refused, each with an answer
        for f in fuzzers[0].frames + fuzzers[1].frames:
            assert isinstance(f, dict) and f.get("op") in SERVER_OPS, f
            if f["op"] == "error":
                assert f["code"] in ERROR_CODES and f["message"], f

        ann.send(json.dumps({"op": "chat", "room": "Calm", "message": "still fine?", "id": 7}))
        assert calm[1].wait_for(lambda f: f.get("message") == "still fine?")  # on the other
        assert calm[0].wait_for(lambda f: f.get("id") == 7 and f["op"] == "chat")
    for chat in chats:
        assert chat.proc is not None and chat.proc.poll() is None
        assert httpx.get(chat.base_url + "/readyz").status_code == 200
