"""The event XML of docs/callbacks.md: one element, children in fixed order, everything escaped.

`render` never produces text a strict XML parser rejects: characters XML 1.0 forbids become
U+FFFD, markup characters become entities, and a carriage return becomes `&#13;` so that parsers
(which normalise line ends) still give back the original value. `parse` is the strict inverse.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import fields

from shared.events import EVENT_TYPES, Event, event_from_dict, field_name

__all__ = ["CONTENT_TYPE", "parse", "render", "xml_safe"]

CONTENT_TYPE = "application/xml; charset=utf-8"

_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;", "\r": "&#13;"}
)
_ATTRIBUTE_ESCAPES = str.maketrans({"\t": "&#9;", "\n": "&#10;"})


def xml_safe(text: str) -> str:
    """`text` with every character XML 1.0 forbids replaced by U+FFFD."""
    return _FORBIDDEN.sub("\ufffd", text)


def _escape(text: str) -> str:
    return xml_safe(text).translate(_ESCAPES)


def render(event: Event) -> str:
    """The XML document for `event`, with the trailing newline VolanoChat sent."""
    kind = event.kind
    attribute = getattr(event, "attribute", None)
    head = kind
    children = []
    for f in fields(event):
        value: str = getattr(event, f.name)
        if f.name == attribute:
            head += f' {f.name}="{_escape(value).translate(_ATTRIBUTE_ESCAPES)}"'
        else:
            name = field_name(f.name)
            children.append(f"<{name}>{_escape(value)}</{name}>")
    return f"<{head}>{''.join(children)}</{kind}>\n"


def parse(document: str | bytes) -> Event:
    """Strictly parse one event document; raises ValueError if it is not exactly one of the
    shapes docs/callbacks.md shows."""
    try:
        root = ET.fromstring(document)
    except ET.ParseError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from exc
    cls = EVENT_TYPES.get(root.tag)
    if cls is None:
        raise ValueError(f"unknown event element <{root.tag}>")
    attribute = getattr(cls, "attribute", None)
    expected_children = [field_name(f.name) for f in fields(cls) if f.name != attribute]
    actual_children = [child.tag for child in root]
    if actual_children != expected_children:
        raise ValueError(f"<{root.tag}> children {actual_children} != {expected_children}")
    expected_attributes = {attribute} if attribute else set()
    if set(root.attrib) != expected_attributes:
        raise ValueError(f"<{root.tag}> attributes {sorted(root.attrib)} != {expected_attributes}")
    if any(len(child) for child in root):
        raise ValueError(f"<{root.tag}> children must hold text only")
    data: dict[str, object] = {"kind": root.tag, **root.attrib}
    data.update({child.tag: child.text or "" for child in root})
    return event_from_dict(data)
