"""Where collection schedules come from, and the date arithmetic every source shares."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from datetime import date, timedelta

from bot.bins.holidays import HolidayTable
from bot.bins.model import Address, BinType, Collection, Round

__all__ = ["LOOKAHEAD_DAYS", "RoundScheduleSource", "ScheduleSource"]

# Far enough to see a fortnightly round even when Christmas pushes it back several days.
LOOKAHEAD_DAYS = 42


class ScheduleSource(abc.ABC):
    """A borough's addresses and the dates each one's bins are collected.

    Attributes:
        holidays: Bank holidays (for working-day arithmetic) and collection changes.
    """

    holidays: HolidayTable

    @abc.abstractmethod
    def addresses_at(self, postcode: str) -> list[Address]:
        """Every address at a normalised ``postcode`` (empty when it is unknown)."""

    @abc.abstractmethod
    def address(self, uprn: str) -> Address | None:
        """The address with this UPRN, or None."""

    @abc.abstractmethod
    def collections(self, uprn: str, start: date, end: date) -> list[Collection]:
        """Actual collections at ``uprn`` from ``start`` to ``end`` inclusive, in date order."""

    def next_collections(self, uprn: str, today: date) -> list[Collection]:
        """The next collection of each bin type on or after ``today``, soonest first."""
        upcoming: dict[BinType, Collection] = {}
        for collection in self.collections(uprn, today, today + timedelta(days=LOOKAHEAD_DAYS)):
            upcoming.setdefault(collection.bin_type, collection)
        order = list(BinType)
        return sorted(upcoming.values(), key=lambda c: (c.on, order.index(c.bin_type)))

    def last_collection(self, uprn: str, bin_type: BinType, today: date) -> date | None:
        """The latest collection of ``bin_type`` on or before ``today`` (None if none recent)."""
        start = today - timedelta(days=LOOKAHEAD_DAYS)
        dates = [c.on for c in self.collections(uprn, start, today) if c.bin_type is bin_type]
        return dates[-1] if dates else None

    def next_collection(self, uprn: str, bin_type: BinType, after: date) -> date | None:
        """The first collection of ``bin_type`` strictly after ``after``."""
        start = after + timedelta(days=1)
        for collection in self.collections(uprn, start, start + timedelta(days=LOOKAHEAD_DAYS)):
            if collection.bin_type is bin_type:
                return collection.on
        return None


class RoundScheduleSource(ScheduleSource):
    """Schedules computed from rounds (weekday, weekly or fortnightly) and a holiday table.

    Args:
        addresses: The borough's addresses, each naming its rounds.
        rounds: Rounds by id.
        holidays: Bank holidays and explicit changes.
    """

    def __init__(
        self, addresses: Iterable[Address], rounds: Mapping[str, Round], holidays: HolidayTable
    ) -> None:
        self.holidays = holidays
        self.rounds = dict(rounds)
        self._by_uprn = {address.uprn: address for address in addresses}
        self._by_postcode: dict[str, list[Address]] = {}
        for address in self._by_uprn.values():
            self._by_postcode.setdefault(address.postcode, []).append(address)

    def addresses_at(self, postcode: str) -> list[Address]:
        """Every address at a normalised ``postcode``, in file order."""
        return list(self._by_postcode.get(postcode, []))

    def address(self, uprn: str) -> Address | None:
        """The address with this UPRN, or None."""
        return self._by_uprn.get(uprn)

    def all_addresses(self) -> list[Address]:
        """Every address, in file order."""
        return list(self._by_uprn.values())

    def collections(self, uprn: str, start: date, end: date) -> list[Collection]:
        """Actual collections at ``uprn`` from ``start`` to ``end`` inclusive, in date order."""
        address = self._by_uprn.get(uprn)
        if address is None:
            return []
        # Holiday changes move dates by days, so look a week either side of the window.
        found = []
        for round_id in address.rounds:
            rnd = self.rounds[round_id]
            for scheduled in rnd.dates(start - timedelta(days=7), end + timedelta(days=7)):
                actual = self.holidays.actual(scheduled)
                if start <= actual <= end:
                    found += [Collection(bin_type, actual) for bin_type in rnd.bin_types]
        order = list(BinType)
        return sorted(found, key=lambda c: (c.on, order.index(c.bin_type)))
