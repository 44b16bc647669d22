"""UK postcodes: validation, normalisation and finding them in free text.

Pure functions with no Rasa dependency, shared with the bins lookup. A postcode is an outward
code (``A9``, ``A99``, ``AA9``, ``AA99``, ``A9A``, ``AA9A``) and an inward code (``9AA``), or the
special ``GIR 0AA``; the letter rules per position are Royal Mail's. Input may be any case and
spaced any way (``sw1a1aa``, ``SW1A  1AA``); the normal form is upper case with one space.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PostcodeMatch", "find_postcodes", "normalise_postcode"]

# Royal Mail: Q V X never first; I J Z never second; restricted letters in the A9A / AA9A
# forms; C I K M O V never in the inward code (they look like digits or each other).
_OUTWARD = r"[A-PR-UWYZ](?:\d\d?|[A-HK-Y]\d\d?|\d[A-HJKPSTUW]|[A-HK-Y]\d[ABEHMNPRVWXY])"
_INWARD = r"\d[ABD-HJLNP-UW-Z]{2}"
_VALID = re.compile(rf"(?:{_OUTWARD}{_INWARD}|GIR0AA)")
# Anything shaped roughly like a postcode, valid or not: letters, a digit, an optional
# character, then a digit and letters. Valid ones are a subset.
_CANDIDATE = re.compile(
    r"(?<![A-Za-z0-9])(?:[A-Za-z]{1,2}\d[A-Za-z\d]?|gir)[ \t]*\d[A-Za-z]{1,3}(?![A-Za-z0-9])",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class PostcodeMatch:
    """A postcode-shaped span of text.

    Attributes:
        raw: The text as written.
        start: Offset of its first character.
        end: Offset just past its last character.
        postcode: The normalised postcode, or None when the span is not a valid postcode.
    """

    raw: str
    start: int
    end: int
    postcode: str | None


def normalise_postcode(text: str) -> str | None:
    """Return ``text`` as a normalised postcode (``"SW1A 1AA"``), or None if it is not one."""
    compact = re.sub(r"\s+", "", text).upper()
    if not _VALID.fullmatch(compact):
        return None
    return f"{compact[:-3]} {compact[-3:]}"


def find_postcodes(text: str) -> list[PostcodeMatch]:
    """Return every postcode-shaped span in ``text``, valid or not, in order."""
    return [
        PostcodeMatch(match.group(), match.start(), match.end(), normalise_postcode(match.group()))
        for match in _CANDIDATE.finditer(text)
    ]
