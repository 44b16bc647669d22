from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import redis.asyncio

from bot import settings
from bot.bins.holidays import HolidayTable
from bot.bins.missed import MissedReports, MissedStatus, check_missed, retention_days
from bot.bins.model import Address, BinType, Round
from bot.bins.schedule import RoundScheduleSource
from bot.errors import ConfigError
from bot.settings import Settings

# Fortnightly grey bin on Thursdays (19 Nov, 3 Dec, 17 Dec, 31 Dec -> 2 Jan ...).
HOLIDAYS = HolidayTable.build(
    [date(2026, 12, 25), date(2026, 12, 28), date(2027, 1, 1)],
    {date(2026, 12, 31): date(2027, 1, 2)},
)
GREY = Round("THU-GEN-A", (BinType.GENERAL,), 3, 2, date(2026, 1, 15))
SOURCE = RoundScheduleSource(
    [Address("7", "7 Elm Road", "AV2 5GG", ("THU-GEN-A",))], {GREY.round_id: GREY}, HOLIDAYS
)


@pytest.mark.parametrize(
    ("today", "status", "last", "upcoming"),
    [
        (date(2026, 11, 19), MissedStatus.DUE_TODAY, date(2026, 11, 19), date(2026, 12, 3)),
        (date(2026, 11, 20), MissedStatus.REPORTABLE, date(2026, 11, 19), date(2026, 12, 3)),
        # Friday's collection, reported on Monday: 1 working day later.
        (date(2026, 11, 23), MissedStatus.REPORTABLE, date(2026, 11, 19), date(2026, 12, 3)),
        (date(2026, 11, 24), MissedStatus.NOT_DUE, date(2026, 11, 19), date(2026, 12, 3)),
        # Thu 31 Dec moved to Sat 2 Jan; Mon 4 and Tue 5 Jan are the 2 working days after it.
        (date(2027, 1, 5), MissedStatus.REPORTABLE, date(2027, 1, 2), date(2027, 1, 14)),
        (date(2027, 1, 6), MissedStatus.NOT_DUE, date(2027, 1, 2), date(2027, 1, 14)),
        # Thu 17 Dec: Fri 18 and Mon 21 are the 2 working days after it.
        (date(2026, 12, 21), MissedStatus.REPORTABLE, date(2026, 12, 17), date(2027, 1, 2)),
    ],
)
def test_check_missed(today: date, status: MissedStatus, last: date, upcoming: date) -> None:
    check = check_missed(SOURCE, "7", BinType.GENERAL, today)
    assert (check.status, check.last, check.next) == (status, last, upcoming)


def test_not_due_for_a_bin_never_collected() -> None:
    check = check_missed(SOURCE, "7", BinType.GARDEN, date(2026, 11, 20))
    assert (check.status, check.last, check.next) == (MissedStatus.NOT_DUE, None, None)


async def test_reports_get_sequential_references_and_expire(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    reports = MissedReports(async_redis, namespace, retention=30)
    now = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    first = await reports.record("7", BinType.GENERAL, date(2026, 11, 19), "whatsapp", now)
    second = await reports.record("8", BinType.GENERAL, date(2026, 11, 19), "telegram", now)
    assert (first, second) == ("MB-2026-000001", "MB-2026-000002")
    stored = await reports.get(first)
    assert stored == {
        "reference": first,
        "uprn": "7",
        "bin_type": "general",
        "due": "2026-11-19",
        "channel": "whatsapp",
        "reported_at": "2026-11-20T09:30:00+00:00",
    }
    ttl = await async_redis.ttl(f"{namespace}:bins:missed:{first}")
    assert 29 * 86400 < ttl <= 30 * 86400
    assert await reports.get("MB-2026-999999") is None


async def test_the_same_missed_collection_reported_twice_keeps_one_reference(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    reports = MissedReports(async_redis, namespace, retention=30)
    now = datetime(2027, 1, 4, 9, tzinfo=UTC)
    first = await reports.record("7", BinType.FOOD, date(2027, 1, 2), "rest", now)
    again = await reports.record("7", BinType.FOOD, date(2027, 1, 2), "rest", now)
    other_bin = await reports.record("7", BinType.GENERAL, date(2027, 1, 2), "rest", now)
    assert first == again == "MB-2027-000001"
    assert other_bin == "MB-2027-000002"


def test_retention_from_environment() -> None:
    settings.use(Settings.from_env({}))
    assert retention_days() == 90
    settings.use(Settings.from_env({"COUNCIL_MISSED_BIN_RETENTION_DAYS": "30"}))
    assert retention_days() == 30
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"COUNCIL_MISSED_BIN_RETENTION_DAYS": "forever"})
    assert caught.value.key == "COUNCIL_MISSED_BIN_RETENTION_DAYS"
