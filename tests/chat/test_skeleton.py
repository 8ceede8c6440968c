"""Names that look alike share a key: the TR39 skeleton after case folding
(services/chat/skeleton.py)."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.chat.confusables_table import ENTRIES, TABLE
from services.chat.skeleton import name_key, skeleton
from shared.names import DEFAULT_IGNORABLE


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def test_the_table_is_whole() -> None:
    assert len(TABLE.split()) == ENTRIES == 6311
    assert all(entry.count("=") == 1 for entry in TABLE.split())


@pytest.mark.parametrize(
    "alike",
    [
        "\uff41\uff4e\uff4e",  # fullwidth
        "\uff21\uff2e\uff2e",
        "\u0430nn",  # Cyrillic a
        "ann\u200b",  # a zero width space after it
        "a\u200dnn",
        "ANN",
        "Ann",
        "\u0391nn",  # Greek capital alpha
        "\u0251nn",  # Latin alpha
        "\u24d0nn",  # circled a
    ],
)
def test_look_alikes_of_ann(alike: str) -> None:
    assert name_key(alike) == name_key("ann") == "ann"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("bill", "bi11"),
        ("bill", "BILL"),
        ("mary", "rnary"),
        ("\u13a0", "d"),
        ("stra\u00dfe", "STRASSE"),
    ],
)
def test_more_look_alikes(a: str, b: str) -> None:
    assert name_key(a) == name_key(b)


@pytest.mark.parametrize(
    ("a", "b"), [("ann", "anna"), ("ann", "\u00e1nn"), ("bob", "bop"), ("a b", "ab")]
)
def test_different_names(a: str, b: str) -> None:
    assert name_key(a) != name_key(b)


def test_skeleton_is_tr39s() -> None:
    assert skeleton("\u0430") == "a"
    assert skeleton("\u00e9") == "e\u0301"  # NFD
    assert skeleton("p\u0430yp\u0430l\u200b") == "paypal"


ascii_names = st.text(string.ascii_letters + string.digits + " _-", min_size=1, max_size=20)
ignorables = st.sampled_from(
    ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e", "\ufe0f"]
)


@given(ascii_names)
def test_case_and_width_never_make_a_new_name(name: str) -> None:
    key = name_key(name)
    assert name_key(name.upper()) == name_key(name.lower()) == key
    assert name_key(fullwidth(name)) == key


@given(ascii_names, st.lists(st.tuples(st.integers(0, 20), ignorables), max_size=4))
def test_invisible_characters_never_make_a_new_name(
    name: str, inserts: list[tuple[int, str]]
) -> None:
    spoof = name
    for at, char in inserts:
        spoof = spoof[:at] + char + spoof[at:]
    assert name_key(spoof) == name_key(name)


@given(st.text(max_size=20))
def test_a_key_holds_no_default_ignorable(name: str) -> None:
    assert not DEFAULT_IGNORABLE.search(name_key(name))
