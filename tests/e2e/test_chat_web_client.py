"""The web client in a real browser (Debian's chromium driven by playwright): two people chat,
ring each other, a monitor kicks one of them, and the page reconnects after the chat restarts.

Set CHAT_SCREENSHOT=docs/web-client.png to refresh the README's screenshot.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.chat.token import mint
from tests.conftest import ROOT, System

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = "web-client-secret-0123456789-0123456789"

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - make test installs it
    sync_playwright = None  # type: ignore[assignment]


@pytest.fixture
def browser() -> Iterator[Browser]:
    if sync_playwright is None or not Path(CHROMIUM).exists():
        pytest.skip(
            "!!! BROWSER TEST SKIPPED: needs the playwright package and Debian's chromium at "
            f"{CHROMIUM} (make test tries `apt-get install -y chromium`) !!!"
        )
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_page(browser: Browser, url: str) -> Page:
    page = browser.new_page(viewport={"width": 1100, "height": 640})
    page.on("dialog", lambda d: d.accept())  # the kick confirmation
    page.goto(url)
    return page


def enter(page: Page, user: str, room: str, profile: str = "", token: str = "") -> None:
    page.fill("#user", user)
    page.fill("#room", room)
    page.fill("#profile", profile)
    if token:
        page.click("#member-box summary")
        page.fill("#token", token)
    page.click("#enter-btn")


def say(page: Page, text: str) -> None:
    page.fill("#message", text)
    page.press("#message", "Enter")


def test_two_people_chat_and_a_monitor_kicks_one(
    browser: Browser, system: System, tmp_path: Path
) -> None:
    chat = system.service("chat", CHAT_JWT_SECRET=SECRET, CHAT_PING_INTERVAL_S="2")
    chat.start()
    room = "Garden <party>"
    ann = open_page(browser, chat.base_url + "/")
    bob = open_page(browser, chat.base_url + "/")
    mod = open_page(browser, chat.base_url + "/")

    enter(ann, "ann", room, profile="likes <b>tags</b> & tea")
    expect(ann.locator('#members li[data-user="ann"]')).to_be_visible()
    expect(ann.locator("#chat-room")).to_have_text(room)
    enter(bob, "bob", room)
    expect(bob.locator("#members li")).to_have_count(2)
    expect(ann.locator('#members li[data-user="bob"]')).to_be_visible()
    expect(bob.locator('#members li[data-user="ann"] .profile')).to_have_text(
        "likes <b>tags</b> & tea"
    )

    enter(mod, "Mona", room, token=mint("Mona", "monitor", SECRET))
    expect(mod.locator("#members li")).to_have_count(3)

    evil = '<img src=x onerror="document.body.dataset.pwned=1"> & hello bob'
    say(ann, evil)
    expect(bob.locator("#log .line").last).to_contain_text(evil)  # shown as text, not markup
    assert bob.locator("#log img").count() == 0
    say(bob, "hi ann! 👋 nice to see you")
    expect(ann.locator("#log .line").last).to_contain_text("bob: hi ann! 👋 nice to see you")

    bob.click('#members li[data-user="ann"] button.ring')
    expect(ann.locator("#log .line.ring")).to_contain_text("bob rang your bell")

    assert ann.locator("button.kick-disconnect").count() == 0  # only staff see kick buttons
    say(mod, "Please keep it friendly.")
    expect(mod.locator('#members li[data-user="bob"] button.kick-disconnect')).to_be_visible()
    mod.click('#members li[data-user="bob"] button.kick-disconnect')

    expect(bob.locator("#error")).to_contain_text("You were disconnected from")
    expect(bob.locator("#status")).to_have_text("disconnected")
    expect(ann.locator("#log")).to_contain_text("bob was disconnected by Mona")
    expect(ann.locator("#members li")).to_have_count(2)
    assert bob.evaluate("document.body.dataset.pwned") is None
    expect(mod.locator("#log")).to_contain_text("bob was disconnected by Mona")
    say(ann, "thanks Mona")
    expect(mod.locator("#log .line").last).to_contain_text("thanks Mona")
    screenshot = tmp_path / "web-client.png"
    mod.screenshot(path=str(screenshot))

    # a non-member cannot take a name a member is using, and is told so plainly

    squatter = open_page(browser, chat.base_url + "/")
    enter(squatter, "mona", "Lobby")
    expect(squatter.locator("#error")).to_contain_text("member_taken")

    # the chat restarts: the page reconnects and enters its room again by itself
    chat.stop()
    expect(ann.locator("#status")).to_contain_text("reconnecting", timeout=15000)
    chat.start()
    expect(ann.locator("#status")).to_have_text("connected", timeout=20000)
    expect(ann.locator('#members li[data-user="ann"]')).to_be_visible(timeout=20000)
    say(ann, "back again")
    expect(ann.locator("#log .line.mine").last).to_contain_text("back again")

    if target := os.environ.get("CHAT_SCREENSHOT"):
        shutil.copy(screenshot, ROOT / target)
    for page in (ann, bob, mod, squatter):
        page.close()
