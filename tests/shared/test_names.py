"""Characters a user or room name may not hold (docs/websocket.md)."""

from __future__ import annotations

import unicodedata
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.codec import render
from shared.events import CreateEvent
from shared.names import DEFAULT_IGNORABLE, has_forbidden_name_characters


@pytest.mark.parametrize(
    "name",
    [
        *["a\x00", "\x07", "tab\there", "new\nline", "\x7f", "\x85", "\ud800", "x\ufffe", "\uffff"],
        # invisible
        *["\u200b", "ann\u200b", "a\u00adnn", "\ufeffann", "a\u2060b", "\u2800", "\u3164"],
        *["\u115f", "a\u034fb", "a\u180eb", "a\U000e0041b", "a\u2028b", "a\ufff9b"],
        # bidirectional controls
        *["\u202eann", "an\u202en", "ann\u200e", "\u200fann", "a\u2066b\u2069", "a\u061cb"],
        # joiners and variation selectors may not come first
        *["\u200dann", "\u200cann", "\ufe0fann", "\U000e0100ann"],
    ],
)
def test_refused(name: str) -> None:
    assert has_forbidden_name_characters(name)


@pytest.mark.parametrize(
    "name",
    [
        *["Lobby", "Event Room", "<b>&", "é 日本 👋", "a.>*"],
        "\u2764\ufe0f",  # a heart with its emoji variation selector
        "\U0001f469\u200d\U0001f4bb",  # woman technologist: a ZWJ sequence
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0645",  # Persian with a ZERO WIDTH NON-JOINER
    ],
)
def test_admitted(name: str) -> None:
    assert not has_forbidden_name_characters(name)


def test_every_format_character_but_the_joiners_is_refused() -> None:
    """The list in shared/names.py against this Python's Unicode data."""
    for code in range(0x110000):
        char = chr(code)
        if unicodedata.category(char) == "Cf" and char not in "\u200c\u200d":
            assert has_forbidden_name_characters("a" + char), hex(code)


JOINERS = {"\u200c", "\u200d", *map(chr, range(0xFE00, 0xFE10)), *map(chr, range(0xE0100, 0xE01F0))}


def test_default_ignorables_are_refused_and_joiners_allowed_only_after_something() -> None:
    for code in range(0x110000):
        char = chr(code)
        if DEFAULT_IGNORABLE.match(char):
            assert has_forbidden_name_characters(char), hex(code)
            assert has_forbidden_name_characters("a" + char) is (char not in JOINERS), hex(code)


@given(st.text(st.characters(codec=None, exclude_categories=()), min_size=1, max_size=40))
def test_an_admitted_name_reaches_xml_unchanged(name: str) -> None:
    if not has_forbidden_name_characters(name):
        root = ET.fromstring(render(CreateEvent(name)))
        assert root[0].text == name
