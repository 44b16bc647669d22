"""The knowledge base's content files: ``responses/knowledge/*.yml``, one file per topic.

Each file has a single top-level key ``knowledge_base:`` holding a list of entries (the fields
of :class:`bot.knowledge.model.Entry`). Rasa's domain loader skips these files because they
have no domain keys, so content can live in git next to the domain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.errors import ConfigError
from bot.knowledge.model import Entry

__all__ = ["CONTENT_DIR", "TOP_KEY", "dump_entries", "load_entries"]

CONTENT_DIR = Path(__file__).resolve().parents[2] / "responses" / "knowledge"
"""The shipped content, found from the package (not the working directory)."""
TOP_KEY = "knowledge_base"


def load_entries(folder: Path = CONTENT_DIR) -> list[Entry]:
    """Read every entry from the content files under ``folder``.

    Raises:
        ConfigError: A file is not valid YAML, an entry lacks a field, or an id repeats.
    """
    entries: dict[str, Entry] = {}
    for path in sorted(folder.glob("*.yml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(str(path), "", f"not valid YAML: {exc}") from exc
        items = data.get(TOP_KEY) if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ConfigError(str(path), TOP_KEY, "expected a list of entries")
        for n, item in enumerate(items):
            where = f"{TOP_KEY}[{n}]"
            if not isinstance(item, dict):
                raise ConfigError(str(path), where, "expected a mapping")
            try:
                entry = Entry.from_dict(item)
            except KeyError as exc:
                raise ConfigError(str(path), f"{where}.{exc.args[0]}", "missing") from exc
            except ValueError as exc:
                raise ConfigError(str(path), where, str(exc)) from exc
            if entry.id in entries:
                raise ConfigError(str(path), f"{where}.id", f"{entry.id} appears twice")
            entries[entry.id] = entry
    return list(entries.values())


def dump_entries(entries: list[Entry], folder: Path = CONTENT_DIR) -> list[Path]:
    """Write entries to ``folder/<topic>.yml`` (sorted, so diffs in git stay small).

    Returns:
        The files written.
    """
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for entry in sorted(entries, key=lambda e: e.id):
        by_topic.setdefault(entry.topic, []).append(entry.to_dict())
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for topic, items in sorted(by_topic.items()):
        path = folder / f"{topic}.yml"
        text = yaml.safe_dump({TOP_KEY: items}, sort_keys=False, allow_unicode=True, width=100)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
