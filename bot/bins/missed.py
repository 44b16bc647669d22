"""Missed-bin reports: was a collection really due, and the report with its reference."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import redis.asyncio

from bot import profile, settings
from bot.bins.model import BinType
from bot.bins.schedule import ScheduleSource
from bot.keys import key

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "REPORT_WINDOW_WORKING_DAYS",
    "MissedCheck",
    "MissedReports",
    "MissedStatus",
    "check_missed",
    "retention_days",
]

REPORT_WINDOW_WORKING_DAYS = 2
DEFAULT_RETENTION_DAYS = 90


class MissedStatus(enum.Enum):
    """Whether a resident can report a bin as missed today."""

    REPORTABLE = "reportable"  # collected on a date within the last 2 working days
    DUE_TODAY = "due_today"  # the crew may still come today
    NOT_DUE = "not_due"  # no collection in the reporting window


@dataclass(frozen=True)
class MissedCheck:
    """The outcome of :func:`check_missed`.

    Attributes:
        status: Whether a report can be taken.
        last: The latest collection on or before today (None when none was scheduled lately).
        next: The next collection after today.
    """

    status: MissedStatus
    last: date | None
    next: date | None


def check_missed(source: ScheduleSource, uprn: str, bin_type: BinType, today: date) -> MissedCheck:
    """Decide whether ``bin_type`` at ``uprn`` can be reported as missed on ``today``.

    A report is accepted when the last scheduled collection was before today and no more than
    two working days (Monday to Friday, not bank holidays) have passed since.
    """
    last = source.last_collection(uprn, bin_type, today)
    upcoming = source.next_collection(uprn, bin_type, today)
    if last == today:
        return MissedCheck(MissedStatus.DUE_TODAY, last, upcoming)
    if last is not None:
        days = ((last + timedelta(days=n)) for n in range(1, (today - last).days + 1))
        passed = sum(1 for day in days if source.holidays.is_working_day(day))
        if passed <= REPORT_WINDOW_WORKING_DAYS:
            return MissedCheck(MissedStatus.REPORTABLE, last, upcoming)
    return MissedCheck(MissedStatus.NOT_DUE, last, upcoming)


def retention_days() -> int:
    """Days a report is kept: the profile's ``retention.missed_bin_reports``.

    ``COUNCIL_MISSED_BIN_RETENTION_DAYS``, when set, overrides it.

    Raises:
        ConfigError: The variable is not a positive whole number, or the profile is invalid.
    """
    return profile.current().retention_in_force(settings.current()).missed_bin_days


class MissedReports:
    """Missed-bin reports in Redis, kept for a limited time (UK GDPR: storage limitation).

    A report holds only what the crews need: UPRN, bin type, collection date, channel and time.
    The same bin and date reported twice gets the first report's reference.

    Args:
        client: An asyncio Redis client with ``decode_responses=True``.
        namespace: Key namespace (``"cr"`` in production).
        retention: Days to keep each report.
    """

    def __init__(
        self, client: redis.asyncio.Redis, namespace: str = "cr", retention: int | None = None
    ) -> None:
        self.client = client
        self.prefix = key(namespace, "bins", "missed")
        self.retention = timedelta(days=retention or retention_days())

    async def record(
        self, uprn: str, bin_type: BinType, due: date, channel: str, now: datetime
    ) -> str:
        """Record a report and return its reference (``MB-2026-000123``)."""
        dedupe = f"{self.prefix}:by:{uprn}:{bin_type.value}:{due.isoformat()}"
        existing = await self.client.get(dedupe)
        if existing is not None:
            return str(existing)
        number = await self.client.incr(f"{self.prefix}:seq:{now.year}")
        reference = f"MB-{now.year}-{number:06d}"
        report = {
            "reference": reference,
            "uprn": uprn,
            "bin_type": bin_type.value,
            "due": due.isoformat(),
            "channel": channel,
            "reported_at": now.isoformat(),
        }
        # NX: two residents of one household reporting at once share the first reference.
        if not await self.client.set(dedupe, reference, nx=True, ex=self.retention):
            return str(await self.client.get(dedupe))
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(f"{self.prefix}:{reference}", mapping=report)
        pipe.expire(f"{self.prefix}:{reference}", self.retention)
        await pipe.execute()
        return reference

    async def get(self, reference: str) -> dict[str, str] | None:
        """The stored report, or None when unknown or expired."""
        report: dict[str, str] = await self.client.hgetall(f"{self.prefix}:{reference}")
        return report or None
