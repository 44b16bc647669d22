"""Every repository path the documentation names exists.

A backticked word in ``README.md`` or ``docs/*.md`` whose first folder is one of the project's
top-level folders (``bot/``, ``tests/``, ``docs/``...) is a path in this repository: the file
or folder must exist (a glob must match something). Placeholders (``<uprn>.ics``,
``{ns}:...``) are not paths; folders made at run time (``.data/``, ``models/``) are not
top-level folders of the layout, so they are not checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LAYOUT = {"actions", "bench", "bot", "data", "docs", "requirements", "responses", "scripts"}
LAYOUT |= {"tests", ".ci"}
_CODE = re.compile(r"`([^`\n]+)`")


def _named_paths(doc: Path) -> list[tuple[int, str]]:
    found = []
    for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), start=1):
        for span in _CODE.findall(line):
            for word in span.split():
                path = word.strip("\"'(),;").rstrip(".:")
                if path.split("/")[0] in LAYOUT and "/" in path and not re.search(r"[<>{}$]", path):
                    found.append((number, path))
    return found


def test_the_scan_sees_paths() -> None:
    named = {path for doc in DOCS for _, path in _named_paths(doc)}
    assert {"bot/web/static/", "responses/*.yml", "bench/results/knowledge.json"} <= named


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.name)
def test_every_named_path_exists(doc: Path) -> None:
    missing = [
        f"{doc.relative_to(ROOT)}:{number}: {path}"
        for number, path in _named_paths(doc)
        if not any(ROOT.glob(path.rstrip("/")))
    ]
    assert not missing, "\n".join(missing)
