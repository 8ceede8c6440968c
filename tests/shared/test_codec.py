"""The event XML (docs/callbacks.md): exact shapes, escaping, and a round-trip for any text."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.codec import parse, render, xml_safe
from shared.events import (
    ChatEvent,
    CreateEvent,
    DeleteEvent,
    EnterEvent,
    Event,
    ExitEvent,
    KickEvent,
    RingEvent,
    from_json,
    to_json,
)

EXACT = [
    (CreateEvent("R"), "<create><room>R</room></create>\n"),
    (
        EnterEvent("R", "U", "127.0.0.1", "P", "member"),
        '<enter type="member"><room>R</room><user>U</user><host>127.0.0.1</host>'
        "<profile>P</profile></enter>\n",
    ),
    (
        EnterEvent("R", "U", "10.0.0.1", ""),
        '<enter type="non-member"><room>R</room><user>U</user><host>10.0.0.1</host>'
        "<profile></profile></enter>\n",
    ),
    (ChatEvent("R", "U", "M"), "<chat><room>R</room><user>U</user><message>M</message></chat>\n"),
    (RingEvent("R", "U", "U2"), "<ring><room>R</room><from>U</from><to>U2</to></ring>\n"),
    (
        KickEvent("R", "U", "U2", "ban"),
        '<kick type="ban"><room>R</room><from>U</from><to>U2</to></kick>\n',
    ),
    (ExitEvent("R", "U"), "<exit><room>R</room><user>U</user></exit>\n"),
    (DeleteEvent("R"), "<delete><room>R</room></delete>\n"),
]


@pytest.mark.parametrize(("event", "xml"), EXACT)
def test_exact_shapes(event: Event, xml: str) -> None:
    assert render(event) == xml
    assert parse(xml) == event


def test_markup_is_escaped() -> None:
    xml = render(ChatEvent("a&b", "<u>", "5 < 6 & \"q\" 'a' > </message><x>"))
    assert xml == (
        "<chat><room>a&amp;b</room><user>&lt;u&gt;</user><message>5 &lt; 6 &amp; &quot;q&quot; "
        "&apos;a&apos; &gt; &lt;/message&gt;&lt;x&gt;</message></chat>\n"
    )


def test_forbidden_characters_become_replacement() -> None:
    xml = render(ChatEvent("R", "U", "a\x00b\x07c\ud800d\ufffee\uffff"))
    assert parse(xml) == ChatEvent("R", "U", "a\ufffdb\ufffdc\ufffdd\ufffde\ufffd")


def test_carriage_return_survives_line_end_normalisation() -> None:
    assert parse(render(ChatEvent("R", "U", "a\r\nb\rc\td"))).message == "a\r\nb\rc\td"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "bad",
    [
        "<chat><room>R</room><user>U</user></chat>",
        "<chat><user>U</user><room>R</room><message>M</message></chat>",
        "<enter><room>R</room><user>U</user><host>H</host><profile>P</profile></enter>",
        '<enter type="guest"><room>R</room><user>U</user><host>H</host><profile/></enter>',
        "<create><room>R</room></create><x/>",
        "<create><room><b>R</b></room></create>",
        "<chat><room>R</room><user>U</user><message>5 < 6</message></chat>",
        "<unknown/>",
    ],
)
def test_parse_refuses_anything_else(bad: str) -> None:
    with pytest.raises(ValueError):
        parse(bad)


texts = st.text(st.characters(codec=None, exclude_categories=()), max_size=60)


def events() -> st.SearchStrategy[Event]:
    return st.one_of(
        st.builds(CreateEvent, texts),
        st.builds(
            EnterEvent, texts, texts, texts, texts, st.sampled_from(["member", "non-member"])
        ),
        st.builds(ChatEvent, texts, texts, texts),
        st.builds(RingEvent, texts, texts, texts),
        st.builds(KickEvent, texts, texts, texts, st.sampled_from(["remove", "disconnect", "ban"])),
        st.builds(ExitEvent, texts, texts),
        st.builds(DeleteEvent, texts),
    )


def _sanitised(event: Event) -> Event:
    return type(event)(*(xml_safe(getattr(event, f)) for f in event.__slots__))  # type: ignore[arg-type]


@given(events())
def test_any_event_round_trips_through_well_formed_xml(event: Event) -> None:
    xml = render(event)
    ET.fromstring(xml.encode("utf-8"))  # strict parser, from the bytes a callback receives
    assert parse(xml.encode("utf-8")) == _sanitised(event)


@given(events())
def test_any_event_round_trips_through_json(event: Event) -> None:
    assert from_json(to_json(event)) == event


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"[]",
        b'{"kind":"nope"}',
        b'{"kind":"chat","room":"R"}',
        b"\xff",
        b'{"kind":"kick","room":"R","from":"a","to":"b","type":"slap"}',
    ],
)
def test_from_json_refuses_bad_payloads(payload: bytes) -> None:
    with pytest.raises(ValueError):
        from_json(payload)
