"""Bank holidays and the collection changes they cause."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

__all__ = ["HolidayTable"]


@dataclass(frozen=True)
class HolidayTable:
    """When collections move.

    The rule: a collection due on or after a bank holiday in the same Monday-Sunday week moves
    one day later for each such holiday up to the day it lands on. ``changes`` are explicit
    moves (Christmas and New Year) that replace the rule for the scheduled date they name.

    Attributes:
        bank_holidays: Dates of bank holidays.
        changes: Scheduled date -> actual date.
    """

    bank_holidays: frozenset[date] = frozenset()
    changes: Mapping[date, date] = field(default_factory=dict)

    @classmethod
    def build(cls, bank_holidays: Iterable[date], changes: Mapping[date, date]) -> HolidayTable:
        """Make a table from any iterable of holidays and mapping of changes."""
        return cls(frozenset(bank_holidays), dict(changes))

    def actual(self, scheduled: date) -> date:
        """Return the date a collection scheduled for ``scheduled`` really happens."""
        if scheduled in self.changes:
            return self.changes[scheduled]
        monday = scheduled - timedelta(days=scheduled.weekday())
        actual = scheduled
        # Repeat so a day moved onto a second bank holiday (Mon 27 -> Tue 28 Dec 2027) moves on.
        while True:
            shift = sum(1 for day in self.bank_holidays if monday <= day <= actual)
            moved = scheduled + timedelta(days=shift)
            if moved == actual:
                return actual
            actual = moved

    def is_working_day(self, day: date) -> bool:
        """Monday to Friday and not a bank holiday."""
        return day.weekday() < 5 and day not in self.bank_holidays
