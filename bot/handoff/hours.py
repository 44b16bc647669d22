"""Opening hours, and when a person will answer a conversation handed over now.

The hours and closed days are the council's (``opening_hours`` and ``closed_days`` in the
council profile, :mod:`bot.profile`); the words residents read are responses in the domain
(``responses/handoff.yml``), which :func:`reply_time` gives the values they vary on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["OpeningHours", "ReplyTime", "reply_time", "spoken_time"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class OpeningHours:
    """When the contact centre has agents on duty.

    Attributes:
        open_at: Opening time on a working day.
        close_at: Closing time on a working day.
        weekdays: Working days (Monday is 0).
        holidays: Closed dates (bank holidays).
        zone: The council's time zone.
    """

    open_at: time = time(9, 0)
    close_at: time = time(17, 0)
    weekdays: frozenset[int] = frozenset(range(5))
    holidays: frozenset[date] = frozenset()
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/London"))

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], base: OpeningHours | None = None
    ) -> OpeningHours:
        """Read hours from configuration; keys left out keep ``base``'s values.

        ``{"open": "08:30", "close": "17:30", "weekdays": ["mon", "tue", "wed", "thu", "fri"],
        "zone": "Europe/London", "holidays": ["2028-01-03", ...]}``. ``holidays`` replaces
        ``base``'s closed days.

        Raises:
            KeyError: A key is unknown (the message names it).
            ValueError: A value is wrong (the message names the key).
        """
        unknown = set(data) - {"open", "close", "weekdays", "zone", "holidays"}
        if unknown:
            raise KeyError(f"unknown key(s) {sorted(unknown)}")
        values: dict[str, Any] = {}
        try:
            if "open" in data:
                values["open_at"] = time.fromisoformat(str(data["open"]))
            if "close" in data:
                values["close_at"] = time.fromisoformat(str(data["close"]))
        except ValueError:
            raise ValueError('open and close are times such as "09:00"') from None
        if "weekdays" in data:
            days = [str(day).lower()[:3] for day in data["weekdays"]]
            if not days or any(day not in _DAYS for day in days):
                raise ValueError(f"weekdays are names of days ({', '.join(_DAYS)})")
            values["weekdays"] = frozenset(_DAYS.index(day) for day in days)
        if "zone" in data:
            try:
                values["zone"] = ZoneInfo(str(data["zone"]))
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"zone {data['zone']!r} is not a time zone name") from None
        if "holidays" in data:
            try:
                values["holidays"] = frozenset(date.fromisoformat(d) for d in data["holidays"])
            except (TypeError, ValueError):
                raise ValueError('holidays are dates such as "2028-01-03"') from None
        hours = replace(base or cls(), **values)
        if hours.close_at <= hours.open_at:
            raise ValueError("close must be after open")
        return hours

    def is_working_day(self, day: date) -> bool:
        """True on a working day that is not a holiday."""
        return day.weekday() in self.weekdays and day not in self.holidays

    def is_open(self, moment: datetime) -> bool:
        """True while agents are on duty."""
        local = moment.astimezone(self.zone)
        return self.is_working_day(local.date()) and self.open_at <= local.time() < self.close_at

    def next_opening(self, moment: datetime) -> datetime:
        """The next time the centre opens after ``moment`` (``moment`` itself if open)."""
        local = moment.astimezone(self.zone)
        if self.is_open(local):
            return local
        day = local.date()
        if self.is_working_day(day) and local.time() < self.open_at:
            return datetime.combine(day, self.open_at, self.zone)
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return datetime.combine(day, self.open_at, self.zone)


def spoken_time(moment: time) -> str:
    """A clock time as residents read it: ``"9am"``, ``"8.30am"``, ``"12pm"``."""
    hour = moment.hour % 12 or 12
    minutes = f".{moment.minute:02d}" if moment.minute else ""
    return f"{hour}{minutes}{'am' if moment.hour < 12 else 'pm'}"


@dataclass(frozen=True)
class ReplyTime:
    """When a person can reply to a conversation handed over now.

    Attributes:
        opens: ``open`` (agents on duty now), ``today`` (opens later today), ``tomorrow``,
            or ``later`` (another day: see ``opens_day``).
        opens_at: Opening time in words (``"9am"``); empty while open.
        opens_day: The weekday it opens (``"Monday"``); empty while open.
    """

    opens: Literal["open", "today", "tomorrow", "later"]
    opens_at: str = ""
    opens_day: str = ""

    def variables(self) -> dict[str, str]:
        """The values the holding responses vary on and show."""
        return {"opens": self.opens, "opens_at": self.opens_at, "opens_day": self.opens_day}


def reply_time(hours: OpeningHours, now: datetime) -> ReplyTime:
    """When a person will be there to reply, seen from ``now``."""
    if hours.is_open(now):
        return ReplyTime("open")
    opening = hours.next_opening(now)
    today = now.astimezone(hours.zone).date()
    opens: Literal["today", "tomorrow", "later"] = "later"
    if opening.date() == today:
        opens = "today"
    elif opening.date() == today + timedelta(days=1):
        opens = "tomorrow"
    return ReplyTime(opens, spoken_time(opening.time()), opening.strftime("%A"))
