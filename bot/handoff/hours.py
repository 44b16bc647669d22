"""Opening hours and the holding reply a resident gets when a person takes over.

The reply says roughly when a person will answer, which depends on whether the contact centre
is open. Safeguarding replies always carry the emergency numbers first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["EMERGENCY_NUMBERS", "OpeningHours", "holding_reply"]

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
    holidays: frozenset[date] = field(default_factory=frozenset)
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/London"))

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
