"""What a user or room name may contain (docs/websocket.md), for the chat, the registry and
member tokens.

A name refuses control characters (Cc), lone surrogates (Cs) and U+FFFE/U+FFFF: none of them
can stand in XML 1.0, so a name that passes reaches every callback exactly as it was typed.
"""

from __future__ import annotations

import re

__all__ = ["has_forbidden_name_characters"]

_FORBIDDEN_IN_NAMES = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def has_forbidden_name_characters(name: str) -> bool:
    return _FORBIDDEN_IN_NAMES.search(name) is not None
