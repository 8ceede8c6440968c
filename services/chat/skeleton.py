"""Names that look alike (docs/websocket.md, "Names"): the key under which a name is in use.

`skeleton` is Unicode's TR39 skeleton (UTS #39, section 4): the text in NFD, without its
default-ignorable characters, each character replaced by its prototype from confusables.txt
(services/chat/confusables_table.py, Unicode 13.0.0), and NFD again. Two strings with the same
skeleton look alike: "ann" with a Cyrillic U+0430 for the "a", or followed by U+200B ZERO WIDTH
SPACE, has the skeleton "ann"; so do "I", "l" and "1", and "rn" and "m".

`name_key` compares names the way the chat does: the skeleton after case folding, where case
folding is Unicode's for identifiers, NFKC_Casefold (NFKC, full case folding, NFKC; the
skeleton drops the default-ignorables that NFKC_Casefold also drops). The NFKC part matters:
confusables.txt lists only some fullwidth letters (U+FF41 "a" but not U+FF4E "n"); NFKC makes
them all ASCII. Folding and skeleton are applied twice, since a few prototypes are capitals
(U+13A0 CHEROKEE LETTER A has the prototype "D"). So "ANN", "Ann" and fullwidth "ann" are one
name. Two names with the same key count as the same name: the second is `name_taken` in a room,
`member_taken` while a member uses the first. Computed only when someone enters a room, never
per chat message.
"""

from __future__ import annotations

import functools
import unicodedata

from services.chat.confusables_table import TABLE
from shared.names import DEFAULT_IGNORABLE

__all__ = ["name_key", "skeleton"]


def _prototypes() -> dict[str, str]:
    table: dict[str, str] = {}
    for entry in TABLE.split():
        source, target = entry.split("=")
        table[chr(int(source, 16))] = "".join(chr(int(cp, 16)) for cp in target.split("+"))
    return table


_PROTOTYPES = _prototypes()
_TRANSLATION = str.maketrans(_PROTOTYPES)


def skeleton(text: str) -> str:
    """The TR39 skeleton of `text`."""
    decomposed = DEFAULT_IGNORABLE.sub("", unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFD", decomposed.translate(_TRANSLATION))


def _fold(text: str) -> str:
    """NFKC_Casefold, less its removal of default-ignorables (which `skeleton` does)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


@functools.lru_cache(maxsize=4096)
def name_key(name: str) -> str:
    """The key two names share when they count as the same name."""
    return skeleton(_fold(skeleton(_fold(name))))
