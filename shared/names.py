"""What a user or room name may contain (docs/websocket.md), for the chat, the registry and
member tokens: one rule, so every room that can be registered can be entered.

A name refuses:

- control characters (Cc), lone surrogates (Cs) and U+FFFE/U+FFFF: none of them can stand in
  XML 1.0, so a name that passes reaches every callback exactly as it was typed;
- bidirectional controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069), which can
  show a name backwards (U+202E followed by "nna" reads "ann");
- invisible characters: the format characters (Cf: U+00AD soft hyphen, U+200B zero width
  space, U+2060 word joiner, U+FEFF, the tag characters, ...), the other
  Default_Ignorable_Code_Points (U+034F, the Hangul fillers U+115F, U+1160, U+3164, U+FFA0,
  U+17B4, U+17B5, the Mongolian variation selectors, and the unassigned ones), U+2800 BRAILLE
  PATTERN BLANK and the line and paragraph separators U+2028 and U+2029.

Allowed, because scripts and emoji need them, but never first: U+200C ZERO WIDTH NON-JOINER,
U+200D ZERO WIDTH JOINER and the variation selectors (U+FE00-U+FE0F, U+E0100-U+E01EF). None of
this makes a name unique: look-alikes are told apart by their skeleton
(services/chat/skeleton.py), which drops every default-ignorable character first.

The lists follow Unicode 15's DerivedCoreProperties.txt and UnicodeData.txt (General_Category
Cf); tests/shared/test_names.py checks them against the `unicodedata` of the running Python.
"""

from __future__ import annotations

import re

__all__ = ["DEFAULT_IGNORABLE", "has_forbidden_name_characters"]

_JOINERS = "\u200c\u200d\ufe00-\ufe0f\U000e0100-\U000e01ef"

_FORBIDDEN_IN_NAMES = re.compile(
    "["
    "\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff"  # Cc, Cs, noncharacters
    "\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160"
    "\u17b4\u17b5\u180b-\u180f\u200b\u200e\u200f\u2028-\u202e\u2060-\u206f\u2800"
    "\u3164\ufeff\uffa0\ufff0-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0000-\U000e00ff\U000e01f0-\U000e0fff"
    f"]|^[{_JOINERS}]"
)

# Unicode's Default_Ignorable_Code_Point: characters that show no glyph of their own
DEFAULT_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)


def has_forbidden_name_characters(name: str) -> bool:
    """True for a name with a character of the module's list (or a joiner first)."""
    return _FORBIDDEN_IN_NAMES.search(name) is not None
