"""The GeoReport v2 specification's examples (``tests/data/open311/``, source in SOURCE.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

__all__ = ["SPEC", "published", "readable"]

SPEC = Path(__file__).resolve().parents[1] / "data" / "open311"

# "service_code":001: a number with leading zeros, which JSON does not allow (SOURCE.md)
_LEADING_ZEROS = re.compile(r'(":\s*)(0\d+)(\s*[,}\n])')


def published(name: str) -> str:
    """An example exactly as the specification prints it."""
    return (SPEC / name).read_text(encoding="utf-8")


def readable(name: str) -> Any:
    """An example as JSON, its leading-zero codes quoted (text, as the XML examples show)."""
    return json.loads(_LEADING_ZEROS.sub(r'\1"\2"\3', published(name)))
