"""The repository stands on its own: no tracked file points at the team's contract file beside
the checkout. The contracts are in docs/ (callbacks.md, registry-api.md, websocket.md,
operations.md); a file that needs one names the page."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The contract file's name and the folder beside the checkout, spelt so that this file does
# not match them itself: the check is a plain `git grep` over the whole tree.
NAME = "SP" + "EC"
BESIDE = "../" + "shared"
OUTSIDE = re.compile(re.escape(BESIDE) + "|" + NAME)


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [ROOT / name for name in listed.split("\0") if name]


def references(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
        return []  # binary (images), or deleted in the working tree
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    return [
        f"{name}:{number}: {line.strip()[:80]}"
        for number, line in enumerate(text.splitlines(), 1)
        if OUTSIDE.search(line)
    ]


def test_the_search_finds_every_kind_of_reference(tmp_path: Path) -> None:
    sample = tmp_path / "sample.md"
    sample.write_text(
        f"see {NAME} §2\nin {BESIDE}/{NAME}.md\nwhere {NAME} is silent\nspec, Spec, ../x/shared\n"
    )
    assert [line.split(":")[1] for line in references(sample)] == ["1", "2", "3"]
    assert references(ROOT / "docs" / "callbacks.md") == []


def test_no_tracked_file_points_outside_the_repository() -> None:
    found = [line for path in tracked_files() for line in references(path)]
    assert not found, "\n".join(found)
