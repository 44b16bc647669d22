"""Opening hours and the holding reply a resident gets when a person takes over.

The reply says roughly when a person will answer, which depends on whether the contact centre
is open. Safeguarding replies always carry the emergency numbers first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "EMERGENCY_NUMBERS",
    "ENGLAND_AND_WALES_BANK_HOLIDAYS",
    "OpeningHours",
    "holding_reply",
]

ENGLAND_AND_WALES_BANK_HOLIDAYS = frozenset(
    date.fromisoformat(day)
    for day in (
        "2025-01-01", "2025-04-18", "2025-04-21", "2025-05-05", "2025-05-26", "2025-08-25",
        "2025-12-25", "2025-12-26",
        "2026-01-01", "2026-04-03", "2026-04-06", "2026-05-04", "2026-05-25", "2026-08-31",
        "2026-12-25", "2026-12-28",
        "2027-01-01", "2027-03-26", "2027-03-29", "2027-05-03", "2027-05-31", "2027-08-30",
        "2027-12-27", "2027-12-28",
    )
)  # fmt: skip
"""The default closed days (GOV.UK's list); councils set ``holidays`` for later years."""
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

EMERGENCY_NUMBERS = (
    "If anyone is in immediate danger, call 999. "
    "Samaritans: 116 123 (free, any time). "
    "National Domestic Abuse Helpline: 0808 2000 247 (free, any time). "
    "Ashvale children's and adults' social care out of hours: 01632 960 999."
)


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
    holidays: frozenset[date] = ENGLAND_AND_WALES_BANK_HOLIDAYS
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/London"))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> OpeningHours:
        """Read hours from configuration; keys left out keep the defaults.

        ``{"open": "08:30", "close": "17:30", "weekdays": ["mon", "tue", "wed", "thu", "fri"],
        "zone": "Europe/London", "holidays": ["2028-01-03", ...]}``. ``holidays`` replaces the
        built-in England and Wales list.

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
        hours = cls(**values)
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


def _when(hours: OpeningHours, now: datetime) -> str:
    if hours.is_open(now):
        return "within the next few working hours"
    opening = hours.next_opening(now)
    local_now = now.astimezone(hours.zone)
    day = (
        "tomorrow"
        if opening.date() == local_now.date() + timedelta(days=1)
        else opening.strftime("%A")
    )
    if opening.date() == local_now.date():
        day = "today"
    return f"after we open at {opening.strftime('%-I%p').lower()} {day}"


def holding_reply(priority: str, now: datetime, hours: OpeningHours | None = None) -> str:
    """The message a resident gets when their conversation goes to a person.

    Args:
        priority: The case's priority (``P1`` is safeguarding).
        now: The time of the handoff.
        hours: The contact centre's hours (default: weekdays 9am to 5pm, London time).
    """
    hours = hours or OpeningHours()
    when = _when(hours, now)
    if priority == "P1":
        return (
            f"Thank you for telling us. {EMERGENCY_NUMBERS} "
            "A member of our safeguarding team has been alerted and a person will reply to you "
            f"{when}."
        )
    return (
        "Thanks, I've passed this to a person in our team, with our conversation so far. "
        f"A person will reply here {when}."
    )
