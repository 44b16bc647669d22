from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot import settings
from bot.bins.ics import IcsScheduleSource, calendar_url, export_calendar, parse_calendar
from bot.bins.model import Address, BinType, Collection
from bot.bins.schedule import RoundScheduleSource
from bot.errors import ConfigError
from bot.settings import Settings

FEED = (
    "BEGIN:VCALENDAR\r\n"
    "VERSION:2.0\r\n"
    "PRODID:-//Example//Waste//EN\r\n"
    "BEGIN:VEVENT\r\n"
    "UID:grey@example\r\n"
    "DTSTART;VALUE=DATE:20261201\r\n"
    "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;UNTIL=20270131\r\n"
    "EXDATE;VALUE=DATE:20261229\r\n"
    "RDATE;VALUE=DATE:20261230\r\n"
    "SUMMARY:Grey bin\r\n"
    " (general waste)\r\n"
    "END:VEVENT\r\n"
    "BEGIN:VEVENT\r\n"
    "UID:food@example\r\n"
    "DTSTART:20261201T070000Z\r\n"
    "RRULE:FREQ=WEEKLY;COUNT=3\r\n"
    "CATEGORIES:food\r\n"
    "END:VEVENT\r\n"
    "BEGIN:VEVENT\r\n"
    "UID:xmas@example\r\n"
    "DTSTART;VALUE=DATE:20261224\r\n"
    "SUMMARY:Garden waste\\, last of the year\r\n"
    "END:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)
HOME = Address("42", "2 Mill Lane", "AV1 2BX", ())


def test_weekly_fortnightly_exdate_rdate_count_and_folding() -> None:
    grey, food, garden = parse_calendar(FEED)
    assert grey.bin_types == (BinType.GENERAL,)
    assert grey.dates(date(2026, 11, 1), date(2027, 3, 1)) == [
        date(2026, 12, 1),
        date(2026, 12, 15),
        date(2026, 12, 30),  # moved from the 29th by EXDATE + RDATE
        date(2027, 1, 12),
        date(2027, 1, 26),
    ]
    assert food.dates(date(2026, 1, 1), date(2027, 12, 31)) == [
        date(2026, 12, 1),
        date(2026, 12, 8),
        date(2026, 12, 15),
    ]
    assert garden.bin_types == (BinType.GARDEN,)
    assert garden.dates(date(2026, 12, 1), date(2026, 12, 31)) == [date(2026, 12, 24)]


def test_ics_source_answers_next_collections() -> None:
    source = IcsScheduleSource.from_documents([HOME], {"42": FEED})
    assert source.addresses_at("AV1 2BX") == [HOME]
    assert source.next_collections("42", date(2026, 12, 16)) == [
        Collection(BinType.GARDEN, date(2026, 12, 24)),
        Collection(BinType.GENERAL, date(2026, 12, 30)),
    ]
    assert source.last_collection("42", BinType.FOOD, date(2026, 12, 20)) == date(2026, 12, 15)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("BEGIN:VEVENT\r\nSUMMARY:Grey bin\r\nEND:VEVENT\r\n", "line 4: VEVENT"),
        ("BEGIN:VEVENT\r\nDTSTART:2026\r\nEND:VEVENT\r\n", "line 5: DTSTART"),
        (
            "BEGIN:VEVENT\r\nDTSTART:20261201\r\nRRULE:FREQ=MONTHLY\r\nSUMMARY:grey\r\nEND:VEVENT\r\n",
            "line 6: RRULE",
        ),
        (
            "BEGIN:VEVENT\r\nDTSTART:20261201\r\nRRULE:FREQ=WEEKLY;BYDAY=MO\r\nSUMMARY:grey\r\n"
            "END:VEVENT\r\n",
            "line 6: RRULE",
        ),
        ("BEGIN:VEVENT\r\nDTSTART:20261201\r\nSUMMARY:Party\r\nEND:VEVENT\r\n", "line 4: SUMMARY"),
    ],
)
def test_unreadable_events_name_the_line(body: str, key: str) -> None:
    text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n" + body + "END:VCALENDAR\r\n"
    with pytest.raises(ConfigError) as caught:
        parse_calendar(text, "feed.ics")
    assert (caught.value.path, caught.value.key) == ("feed.ics", key)


def test_not_a_calendar() -> None:
    with pytest.raises(ConfigError):
        parse_calendar("<html>", "feed.ics")


def test_export_is_valid_and_round_trips(demo_source: RoundScheduleSource) -> None:
    uprn = demo_source.addresses_at("AV1 2BX")[1].uprn
    start = date(2026, 12, 1)
    text = export_calendar(
        uprn, demo_source, start, days=60, now=datetime(2026, 11, 23, 9, tzinfo=UTC)
    )
    lines = text.split("\r\n")
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-2] == "END:VCALENDAR" and lines[-1] == ""
    assert all(len(line.encode()) <= 75 for line in lines)
    assert "VERSION:2.0" in lines and any(line.startswith("PRODID:") for line in lines)
    assert text.count("BEGIN:VEVENT") == text.count("END:VEVENT") > 0
    assert "DTSTAMP:20261123T090000Z" in lines
    uids = [line for line in lines if line.startswith("UID:")]
    assert len(uids) == len(set(uids))
    # Parsing our own export gives back exactly the schedule it was made from.
    address = demo_source.address(uprn)
    assert address is not None
    exported = IcsScheduleSource.from_documents([address], {uprn: text})
    end = date(2027, 1, 29)
    assert exported.collections(uprn, start, end) == demo_source.collections(uprn, start, end)


def test_calendar_url_uses_the_public_url() -> None:
    settings.use(Settings.from_env({}))
    assert calendar_url("100") == "http://127.0.0.1:8080/bins/calendar/100.ics"
    settings.use(Settings.from_env({"COUNCIL_PUBLIC_URL": "https://bins.ashvale.gov.uk/"}))
    assert calendar_url("100") == "https://bins.ashvale.gov.uk/bins/calendar/100.ics"
    assert calendar_url("100", "https://x.example") == "https://x.example/bins/calendar/100.ics"


def test_export_of_unknown_address(demo_source: RoundScheduleSource) -> None:
    with pytest.raises(ConfigError):
        export_calendar("999", demo_source, date(2026, 12, 1))
