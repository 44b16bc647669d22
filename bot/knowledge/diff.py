"""Differences between two versions of an entry, field by field, for editors to read."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from bot.knowledge.model import Entry

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


def _flatten(entry: Entry) -> dict[str, list[str]]:
    data = entry.to_dict()
    flat: dict[str, list[str]] = {"questions": list(entry.questions)}
    for channel, text in sorted(entry.answers.items()):
        flat[f"answers.{channel}"] = text.splitlines() or [""]
    for name, value in data.items():
        if name not in {"questions", "answers", "id"}:
            flat[name] = [str(value)]
    for name in ("publish_from", "expire_at", "title"):
        flat.setdefault(name, [])
    return flat


def entry_diff(before: Entry, after: Entry) -> list[FieldDiff]:
    """Return the fields that differ between two entries, with line-level changes."""
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
