"""Characters a user or room name may not hold (docs/websocket.md)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.codec import render
from shared.events import CreateEvent
from shared.names import has_forbidden_name_characters


@pytest.mark.parametrize(
    "name",
    ["a\x00", "\x07", "tab\there", "new\nline", "\x7f", "\x85", "\ud800", "x\ufffe", "\uffff"],
)
def test_refused(name: str) -> None:
    assert has_forbidden_name_characters(name)


@pytest.mark.parametrize("name", ["Lobby", "Event Room", "<b>&", "é 日本 👋", "a.>*"])
def test_admitted(name: str) -> None:
    assert not has_forbidden_name_characters(name)


@given(st.text(st.characters(codec=None, exclude_categories=()), min_size=1, max_size=40))
def test_an_admitted_name_reaches_xml_unchanged(name: str) -> None:
    if not has_forbidden_name_characters(name):
        root = ET.fromstring(render(CreateEvent(name)))
        assert root[0].text == name
