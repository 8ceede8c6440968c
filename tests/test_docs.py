"""The contract pages in docs/ are complete and current: every setting, event, frame, error code,
route, metric and make target the code has is documented by its name, and what the pages show
(the XML shapes, the verification example, the defaults) is what the code does."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import fields
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings

from services.chat.settings import ChatSettings
from services.dispatcher.settings import DispatcherSettings
from services.registry.app import create_app
from services.registry.settings import RegistrySettings
from shared.events import EVENT_TYPES, field_name
from shared.settings import CommonSettings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SETTINGS_CLASSES: list[type[BaseSettings]] = [
    CommonSettings,
    ChatSettings,
    RegistrySettings,
    DispatcherSettings,
]


def section(page: str, heading: str) -> str:
    """The text of `## heading` in docs/`page`, up to the next `## ` heading."""
    text = (DOCS / page).read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row in `text` (header and rule rows left out)."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or set(line) <= set("|- "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        rows.append(cells)
    return rows


# --- settings ----------------------------------------------------------------------------------


def documented_settings() -> dict[str, str]:
    """`NAME -> default cell` of the first table under "Settings" in docs/operations.md."""
    text = section("operations.md", "Settings")
    table = text[: text.index("Planned settings")]
    found = {}
    for cells in table_rows(table):
        names = re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0])
        if len(names) == 1 and len(cells) == 4:
            found[names[0]] = cells[2]
    return found


def shown_default(value: Any) -> str:
    """A default as the table writes it."""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if value == "":
        return "(empty)"
    return f"`{value}`"


def all_fields() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for cls in SETTINGS_CLASSES:
        for name, info in cls.model_fields.items():
            found[name.upper()] = info.default
    return found


def test_every_setting_of_every_service_is_in_the_settings_table() -> None:
    documented = documented_settings()
    missing = sorted(set(all_fields()) - set(documented))
    assert not missing, f"add these to docs/operations.md, 'Settings': {missing}"


def test_the_settings_table_shows_each_default_as_the_code_has_it() -> None:
    documented = documented_settings()
    wrong = {
        name: (documented[name], shown_default(default))
        for name, default in all_fields().items()
        if name in documented and documented[name] != shown_default(default)
    }
    assert not wrong, f"(table, code): {wrong}"


def test_no_setting_the_services_read_is_listed_as_planned() -> None:
    text = section("operations.md", "Settings")
    planned = text[text.index("Planned settings") :]
    named = {n for cells in table_rows(planned) for n in re.findall(r"`([A-Z0-9_]+)`", cells[0])}
    landed = sorted(named & set(all_fields()))
    assert not landed, f"move to the main table of docs/operations.md, 'Settings': {landed}"


def test_the_shown_default_is_what_the_table_reader_expects() -> None:
    """The helper above can fail: a wrong default is told apart."""
    assert shown_default(True) == "`true`"
    assert shown_default(10.0) == "`10`"
    assert shown_default(0.5) == "`0.5`"
    assert shown_default("") == "(empty)"
    assert shown_default("Lobby") != "`lobby`"


# --- callbacks ---------------------------------------------------------------------------------


def documented_xml_shapes() -> dict[str, ET.Element]:
    text = (DOCS / "callbacks.md").read_text()
    block = re.search(r"```xml\n(.*?)```", text, re.S)
    assert block is not None
    shapes = {}
    for line in block.group(1).splitlines():
        element = ET.fromstring(line)
        shapes[element.tag] = element
    return shapes


def test_every_event_is_shown_with_its_children_in_order() -> None:
    shapes = documented_xml_shapes()
    assert set(shapes) == set(EVENT_TYPES)
    for kind, cls in EVENT_TYPES.items():
        attribute = getattr(cls, "attribute", None)
        children = [field_name(f.name) for f in fields(cls) if f.name != attribute]
        assert [child.tag for child in shapes[kind]] == children, kind
        assert set(shapes[kind].attrib) == ({attribute} if attribute else set()), kind


def python_block(path: Path, heading: str) -> str:
    text = path.read_text()
    code = re.search(r"```python\n(.*?)```", text[text.index(heading) :], re.S)
    assert code is not None, f"{path.name}: no Python example under {heading!r}"
    return code.group(1)


def test_the_verification_example_is_the_one_the_readme_tests_run() -> None:
    """tests/dispatcher/test_readme_verify.py runs the README's `verify` against the
    dispatcher's signatures; the page shows the same code."""
    page = python_block(DOCS / "callbacks.md", "## Headers and signature")
    readme = python_block(ROOT / "README.md", "## Receiving callbacks")
    assert "def verify(" in page
    assert page == readme


def test_every_metric_the_docs_name_exists_in_the_code() -> None:
    sources = " ".join(p.read_text() for p in (ROOT / "services").rglob("*.py"))
    for page in ("callbacks.md", "operations.md", "registry-api.md"):
        named = re.findall(
            r"`((?:chat|registry|dispatcher)_[a-z_]+)[`{]", (DOCS / page).read_text()
        )
        assert named, page
        missing = sorted({m for m in named if f'"{m}"' not in sources})
        assert not missing, f"{page} names metrics the code does not have: {missing}"


# --- websocket ---------------------------------------------------------------------------------


def chat_sources() -> str:
    return " ".join(p.read_text() for p in sorted((ROOT / "services/chat").glob("*.py")))


def test_every_error_code_the_chat_sends_is_in_the_table() -> None:
    codes = set(re.findall(r"ChatError\(\s*\"([a-z_]+)\"", chat_sources()))
    codes |= set(re.findall(r"server\.refuse\(\s*conn,\s*\"([a-z_]+)\"", chat_sources()))
    assert {"bad_request", "unavailable", "rate_limited"} <= codes  # the search works
    table = section("websocket.md", "Frames")
    documented = {cells[0].strip("`") for cells in table_rows(table)}
    assert codes <= documented, sorted(codes - documented)


def test_every_frame_is_in_the_tables() -> None:
    sent = set(re.findall(r"\"op\": \"([a-z]+)\"", chat_sources()))
    received = set(re.findall(r'op == "([a-z]+)"', chat_sources()))
    assert {"entered", "error"} <= sent and {"enter", "kick"} <= received  # the search works
    table = section("websocket.md", "Frames")
    documented = {cells[0].strip("`") for cells in table_rows(table)}
    assert sent | received <= documented, sorted((sent | received) - documented)


# --- registry ----------------------------------------------------------------------------------


def test_every_registry_route_and_metric_is_on_the_api_page() -> None:
    app = create_app(RegistrySettings(registry_api_tokens="t" * 40, event_callback_prefix=""))
    page = (DOCS / "registry-api.md").read_text()
    paths = set(app.openapi()["paths"])
    assert "/v1/subscriptions/{sub_id}" in paths
    for path in paths:
        assert path.replace("{sub_id}", "{id}") in page, path
    metrics = re.findall(
        r'"(registry_[a-z_]+)"', (ROOT / "services/registry/metrics.py").read_text()
    )
    assert metrics
    for metric in metrics:
        assert f"`{metric.removesuffix('_total')}" in page, metric


# --- make targets and links --------------------------------------------------------------------


def test_every_make_target_is_in_the_table() -> None:
    makefile = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY: (.*)$", makefile, re.M)
    assert phony is not None
    documented = {
        cells[0].strip("`") for cells in table_rows(section("operations.md", "Make targets"))
    }
    missing = {f"make {t}" for t in phony.group(1).split()} - documented
    assert not missing, sorted(missing)


def test_relative_links_in_the_docs_and_readme_lead_somewhere() -> None:
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name}: {target}"
