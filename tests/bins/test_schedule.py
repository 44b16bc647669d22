from __future__ import annotations

from datetime import date

import pytest

from bot.bins.csv_source import read_holidays
from bot.bins.demo import DEMO_DIR
from bot.bins.holidays import HolidayTable
from bot.bins.model import Address, BinType, Collection, Round
from bot.bins.schedule import RoundScheduleSource

WEEK_A_MONDAY = date(2026, 1, 5)


@pytest.fixture(scope="module")
def holidays() -> HolidayTable:
    errors: list = []
    table = read_holidays(DEMO_DIR / "holidays.csv", errors)
    assert errors == []
    return table


def _round(round_id: str, bins: tuple[BinType, ...], weekday: int, weeks: int, ref: date) -> Round:
    return Round(round_id, bins, weekday, weeks, ref)


def _source(holidays: HolidayTable, *rounds: Round) -> RoundScheduleSource:
    address = Address("1", "2 Mill Lane", "AV1 2BX", tuple(r.round_id for r in rounds))
    return RoundScheduleSource([address], {r.round_id: r for r in rounds}, holidays)


def _weekly(weekday: int) -> Round:
    ref = date.fromordinal(WEEK_A_MONDAY.toordinal() + weekday)
    return _round(f"W{weekday}", (BinType.FOOD,), weekday, 1, ref)


def test_round_dates_before_and_after_the_reference() -> None:
    fortnightly = _round("F", (BinType.GENERAL,), 0, 2, date(2026, 1, 5))
    assert fortnightly.dates(date(2025, 12, 20), date(2026, 1, 20)) == [
        date(2025, 12, 22),
        date(2026, 1, 5),
        date(2026, 1, 19),
    ]
    assert fortnightly.dates(date(2026, 1, 6), date(2026, 1, 18)) == []


def test_ordinary_week_is_not_shifted(holidays: HolidayTable) -> None:
    source = _source(holidays, _weekly(1))
    assert source.next_collections("1", date(2026, 11, 23)) == [
        Collection(BinType.FOOD, date(2026, 11, 24))
    ]


@pytest.mark.parametrize(
    ("weekday", "scheduled", "actual"),
    [
        (4, date(2026, 4, 3), date(2026, 4, 4)),  # Good Friday -> Saturday
        (0, date(2026, 4, 6), date(2026, 4, 7)),  # Easter Monday -> Tuesday
        (4, date(2026, 4, 10), date(2026, 4, 11)),  # after Easter Monday in that week
        (2, date(2026, 5, 27), date(2026, 5, 28)),  # spring bank holiday week
        (4, date(2026, 12, 25), date(2026, 12, 26)),  # Christmas Day
        (0, date(2026, 12, 28), date(2026, 12, 29)),  # Boxing Day substitute
        (1, date(2026, 12, 29), date(2026, 12, 30)),  # year end: rule
        (3, date(2026, 12, 31), date(2027, 1, 2)),  # year end: explicit change into 2027
        (4, date(2027, 1, 1), date(2027, 1, 2)),  # New Year's Day: explicit change
        (0, date(2027, 12, 27), date(2027, 12, 29)),  # two bank holidays in one week
        (4, date(2027, 12, 31), date(2028, 1, 1)),  # explicit change into 2028
    ],
)
def test_bank_holiday_shifts(
    holidays: HolidayTable, weekday: int, scheduled: date, actual: date
) -> None:
    assert holidays.actual(scheduled) == actual
    source = _source(holidays, _weekly(weekday))
    assert source.next_collections("1", scheduled)[0].on == actual


def test_next_collection_across_the_year_end(holidays: HolidayTable) -> None:
    thursday = _weekly(3)
    source = _source(holidays, thursday)
    assert source.next_collection("1", BinType.FOOD, date(2026, 12, 24)) == date(2027, 1, 2)
    assert source.next_collection("1", BinType.FOOD, date(2027, 1, 2)) == date(2027, 1, 7)
    assert source.last_collection("1", BinType.FOOD, date(2027, 1, 4)) == date(2027, 1, 2)


def test_fortnightly_rounds_alternate(holidays: HolidayTable) -> None:
    general = _round("G", (BinType.GENERAL,), 0, 2, WEEK_A_MONDAY)
    recycling = _round("R", (BinType.RECYCLING,), 0, 2, date(2026, 1, 12))
    food = _weekly(0)
    source = _source(holidays, general, recycling, food)
    assert source.next_collections("1", date(2026, 11, 24)) == [
        Collection(BinType.RECYCLING, date(2026, 11, 30)),
        Collection(BinType.FOOD, date(2026, 11, 30)),
        Collection(BinType.GENERAL, date(2026, 12, 7)),
    ]
    # The Christmas week shift keeps the alternation: week A on 21 Dec, B moves to Tue 29 Dec.
    dates = [c.on for c in source.collections("1", date(2026, 12, 14), date(2027, 1, 12))]
    general_dates = [
        c.on
        for c in source.collections("1", date(2026, 12, 14), date(2027, 1, 12))
        if c.bin_type is BinType.GENERAL
    ]
    assert general_dates == [date(2026, 12, 21), date(2027, 1, 4)]
    assert date(2026, 12, 29) in dates and date(2026, 12, 28) not in dates


def test_unknown_uprn_has_no_collections(holidays: HolidayTable) -> None:
    source = _source(holidays, _weekly(0))
    assert source.collections("nope", date(2026, 1, 1), date(2026, 12, 31)) == []
    assert source.next_collections("nope", date(2026, 1, 1)) == []
    assert source.address("nope") is None


def test_bin_type_parsing() -> None:
    assert BinType.parse("the blue one") is BinType.RECYCLING
    assert BinType.parse("grey bin") is BinType.GENERAL
    assert BinType.parse("food caddy") is BinType.FOOD
    assert BinType.parse("garden waste") is BinType.GARDEN
    assert BinType.parse("my cat") is None
    assert BinType.all_in("Grey bin and food caddy") == [BinType.FOOD, BinType.GENERAL]
