"""The nouns of bin collections: bin types, addresses and collection rounds.

How residents name each bin ("recycling (blue bin)"; "blue" picks it) is the council's:
``bins`` in its profile (:mod:`bot.profile`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, timedelta

from bot.profile import current as council_profile

__all__ = ["Address", "BinType", "Collection", "Round"]


class BinType(enum.Enum):
    """A container the council empties; the value is the code used in data files."""

    GENERAL = "general"
    RECYCLING = "recycling"
    GARDEN = "garden"
    FOOD = "food"

    @property
    def label(self) -> str:
        """How replies name it (the profile's ``bins.<code>.label``)."""
        return council_profile().bins[self.value].label

    def label_in(self, language: str) -> str:
        """How a reply in ``language`` names it (the profile's ``bins.<code>.cy`` in Welsh)."""
        return council_profile().bins[self.value].label_in(language)

    @classmethod
    def parse(cls, text: str) -> BinType | None:
        """Return the bin type ``text`` names (code, colour or kind of waste), or None."""
        found = cls.all_in(text)
        return found[0] if found else None

    @classmethod
    def all_in(cls, text: str) -> list[BinType]:
        """Every bin type ``text`` names (its code or one of the profile's words for it)."""
        words = text.lower()
        names = council_profile().bins
        return [
            t
            for t in _CHECK_ORDER
            if t.value in words or any(w in words for w in names[t.value].words)
        ]


# Checked in order: food before general, so "general food waste" is never asked.
_CHECK_ORDER = (BinType.FOOD, BinType.GARDEN, BinType.RECYCLING, BinType.GENERAL)


@dataclass(frozen=True)
class Address:
    """A property the council collects from.

    Attributes:
        uprn: Unique Property Reference Number.
        line: First line of the address ("2 Mill Lane").
        postcode: Normalised postcode ("AV1 2BX").
        rounds: Ids of the collection rounds serving it (empty: no council collection).
    """

    uprn: str
    line: str
    postcode: str
    rounds: tuple[str, ...]


@dataclass(frozen=True)
class Round:
    """A crew's regular collection of some bin types on one weekday.

    Attributes:
        round_id: The round's code ("MON-A").
        bin_types: What the crew empties.
        weekday: 0 = Monday ... 4 = Friday.
        interval_weeks: 1 for weekly, 2 for fortnightly.
        reference: A date on which the round is collected; fortnightly rounds alternate from it.
    """

    round_id: str
    bin_types: tuple[BinType, ...]
    weekday: int
    interval_weeks: int
    reference: date

    def dates(self, start: date, end: date) -> list[date]:
        """Scheduled dates (before any holiday change) from ``start`` to ``end`` inclusive."""
        period = 7 * self.interval_weeks
        offset = (start - self.reference).days % period
        first = start + timedelta(days=(period - offset) % period)
        return [first + timedelta(days=n) for n in range(0, (end - first).days + 1, period)]


@dataclass(frozen=True)
class Collection:
    """One actual collection: a bin type emptied on a date (after holiday changes)."""

    bin_type: BinType
    on: date
