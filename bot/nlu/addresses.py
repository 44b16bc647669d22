"""Street addresses in free text (``12 High Street``, ``Flat 3, 45 Mill Lane``).

A deliberately narrow rule: a house number, one to four words, and a street-type word. It finds
what residents usually type before their postcode; it does not validate that the place exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["AddressMatch", "find_addresses"]

_STREET_TYPES = (
    "street|st|road|rd|lane|ln|avenue|ave|close|drive|dr|way|court|ct|crescent|cres|place|pl"
    "|grove|gardens|gdns|terrace|hill|park|row|walk|square|sq|mews|view|green|parade|rise"
)
_UNIT = r"(?:(?:flat|apartment|apt|unit)\s+\d+[a-z]?,?\s+)?"
_ADDRESS = re.compile(
    rf"\b{_UNIT}\d+[a-z]?,?\s+(?:[a-z'-]+\s+){{0,3}}(?:{_STREET_TYPES})\b\.?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class AddressMatch:
    """An address-shaped span of text.

    Attributes:
        raw: The text as written (trailing full stop removed).
        start: Offset of its first character.
        end: Offset just past its last character.
    """

    raw: str
    start: int
    end: int


def find_addresses(text: str) -> list[AddressMatch]:
    """Return every street address in ``text``, in order."""
    matches = []
    for match in _ADDRESS.finditer(text):
        raw = match.group().rstrip(".")
        matches.append(AddressMatch(raw, match.start(), match.start() + len(raw)))
    return matches
