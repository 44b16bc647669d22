"""Differences between two versions of an entry (or any versioned item), field by field."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from bot.versioning import Versionable

__all__ = ["FieldDiff", "entry_diff"]


@dataclass(frozen=True)
class FieldDiff:
    """How one field changed.

    Attributes:
        name: The field, e.g. ``answers.sms`` or ``questions``.
        lines: ``(mark, text)`` pairs: ``"-"`` removed, ``"+"`` added, ``" "`` unchanged.
    """

    name: str
    lines: tuple[tuple[str, str], ...]


def _flatten(item: Versionable) -> dict[str, list[str]]:
    flat: dict[str, list[str]] = {}

    def add(name: str, value: Any) -> None:
        if isinstance(value, dict):
            for part, inner in sorted(value.items()):
                add(f"{name}.{part}", inner)
        elif isinstance(value, list):
            flat[name] = [str(v) for v in value]
        elif isinstance(value, str):
            flat[name] = value.splitlines() or [""]
        else:
            flat[name] = [str(value)]

    for name, value in item.to_dict().items():
        if name != "id":
            add(name, value)
    return flat


def entry_diff(before: Versionable, after: Versionable) -> list[FieldDiff]:
    """Return the fields that differ between two versions' items, with line-level changes.

    Works for any versioned content (:class:`bot.versioning.Versionable`): knowledge-base
    entries (``answers.sms``, ``questions``...) and response texts (``text``).
    """
    old, new = _flatten(before), _flatten(after)
    diffs = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name, []), new.get(name, [])
        if a == b:
            continue
        lines = tuple(
            (line[0], line[2:]) for line in difflib.ndiff(a, b) if line[:1] in {"-", "+", " "}
        )
        diffs.append(FieldDiff(name, lines))
    return diffs
