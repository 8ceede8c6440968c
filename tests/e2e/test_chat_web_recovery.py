"""The web page's history and recovery in a real browser (Debian's chromium driven by
playwright, as in tests/e2e/test_chat_web_client.py), against two chat replicas: a page enters a
room with 60 earlier messages and shows the last 50 above the line that says who is here; its
replica restarts while others keep talking on the other one; back, it shows every message once,
in order; and when the stream no longer holds all it missed, it marks the gap.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import nats
import pytest

from shared.subjects import EVENTS_STREAM
from tests.chat.wsclient import start_together
from tests.conftest import System
from tests.e2e.test_chat_web_client import browser, enter, open_page, say

pytestmark = pytest.mark.e2e

__all__ = ["browser"]  # the fixture, shared with the other browser test

with contextlib.suppress(ImportError):  # without it the `browser` fixture skips, loudly
    from playwright.sync_api import Browser, Page, expect


def chat_lines(page: Page) -> list[tuple[int, str]]:
    """(seq, "user: message") of every chat line the page shows, top to bottom."""
    found: list[Any] = page.evaluate(
        "[...document.querySelectorAll('#log .line.chat')]"
        ".map((d) => [Number(d.dataset.seq), d.textContent])"
    )
    return [(int(seq), str(text).split(" ", 1)[1]) for seq, text in found]


def test_a_page_shows_the_history_and_after_a_restart_every_message_once(
    browser: Browser, system: System
) -> None:
    away, stays = (system.service("chat", CHAT_PING_INTERVAL_S="2") for _ in range(2))
    start_together(away, stays)
    room = "Reading room"
    bob = open_page(browser, stays.base_url + "/")
    enter(bob, "bob", room)
    expect(bob.locator('#members li[data-user="bob"]')).to_be_visible()
    for i in range(60):
        say(bob, f"early {i}")
    expect(bob.locator("#log .line.chat")).to_have_count(60)

    ann = open_page(browser, away.base_url + "/")
    enter(ann, "ann", room)
    expect(ann.locator('#members li[data-user="ann"]')).to_be_visible()
    expect(ann.locator("#log .line.chat.history")).to_have_count(50)
    # the history is above the line that says who is here
    expect(ann.locator("#log .line").nth(50)).to_contain_text("You entered Reading room. Here:")
    assert [text for _, text in chat_lines(ann)] == [f"bob: early {i}" for i in range(10, 60)]
    say(ann, "hello bob")
    expect(bob.locator("#log .line.chat").last).to_contain_text("ann: hello bob")

    away.stop()  # ann's connection is cut; bob's replica goes on
    expect(ann.locator("#status")).to_contain_text("reconnecting", timeout=15000)
    for i in range(5):
        say(bob, f"while away {i}")
    expect(bob.locator("#log .line.chat").last).to_contain_text("while away 4")
    away.start()
    expect(ann.locator("#status")).to_have_text("connected", timeout=20000)
    expect(ann.locator('#members li[data-user="ann"]')).to_be_visible(timeout=20000)
    say(bob, "welcome back")
    expect(ann.locator("#log .line.chat").last).to_contain_text("bob: welcome back")

    shown = chat_lines(ann)
    assert [text for _, text in shown] == [
        *(f"bob: early {i}" for i in range(10, 60)),
        "ann: hello bob",
        *(f"bob: while away {i}" for i in range(5)),
        "bob: welcome back",
    ]
    seqs = [seq for seq, _ in shown]
    assert seqs == sorted(set(seqs))
    assert ann.locator("#log .line.gap").count() == 0
    expect(ann.locator("#log .line.replay")).to_have_count(6)  # ann's exit, bob's five
    for page in (ann, bob):
        page.close()


def purge_below(url: str, seq: int) -> None:
    """The stream drops every event before `seq`, as its age or size limit would (from a thread:
    playwright's sync API holds this one's event loop)."""

    async def purge() -> None:
        nc = await nats.connect(url)
        try:
            await nc.jetstream().purge_stream(EVENTS_STREAM, seq=seq)
        finally:
            await nc.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, purge()).result()


def test_a_page_marks_what_the_stream_no_longer_holds(browser: Browser, system: System) -> None:
    away, stays = (system.service("chat", CHAT_PING_INTERVAL_S="2") for _ in range(2))
    start_together(away, stays)
    room = "Gap room"
    bob = open_page(browser, stays.base_url + "/")
    enter(bob, "bob", room)
    ann = open_page(browser, away.base_url + "/")
    enter(ann, "ann", room)
    expect(bob.locator('#members li[data-user="ann"]')).to_be_visible()
    say(bob, "before")
    expect(ann.locator("#log .line.chat").last).to_contain_text("bob: before")

    away.stop()
    expect(ann.locator("#status")).to_contain_text("reconnecting", timeout=15000)
    for text in ("lost 1", "lost 2", "kept 1", "kept 2"):
        say(bob, text)
    expect(bob.locator("#log .line.chat").last).to_contain_text("kept 2")
    kept = int(bob.locator("#log .line.chat").nth(3).get_attribute("data-seq") or 0)
    purge_below(system.nats.url, kept)
    away.start()
    expect(ann.locator("#log .line.gap")).to_have_count(1, timeout=20000)
    expect(ann.locator('#members li[data-user="ann"]')).to_be_visible()
    assert [text for _, text in chat_lines(ann)] == ["bob: before", "bob: kept 1", "bob: kept 2"]
    order = ann.evaluate(
        "[...document.querySelectorAll('#log .line.gap, #log .line.chat')].map((d) => d.className)"
    )
    assert ["gap" in c for c in order] == [False, True, False, False]  # the gap above the kept
    for page in (ann, bob):
        page.close()
