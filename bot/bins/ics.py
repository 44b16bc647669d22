"""iCalendar (RFC 5545) feeds: a schedule source that reads them, and export for residents.

The parser is deliberately small: it reads the VEVENTs councils' waste systems publish (all-day
or timed DTSTART, weekly RRULE with INTERVAL/COUNT/UNTIL, EXDATE, RDATE) and rejects anything
else with a :class:`~bot.errors.ConfigError` naming the line, rather than guessing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

from bot import settings
from bot.bins.holidays import HolidayTable
from bot.bins.model import Address, BinType, Collection
from bot.bins.schedule import ScheduleSource
from bot.errors import ConfigError
from bot.profile import current as council_profile

__all__ = [
    "CALENDAR_PATH",
    "DEFAULT_PUBLIC_URL",
    "IcsEvent",
    "IcsScheduleSource",
    "calendar_url",
    "export_calendar",
    "parse_calendar",
]

CALENDAR_PATH = "/bins/calendar/{uprn}.ics"
"""Where the web console (``bot.web.calendar``) serves each address's calendar."""
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080"
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True)
class IcsEvent:
    """One VEVENT: bin types collected on its dates.

    Attributes:
        bin_types: From CATEGORIES (codes) or, failing that, the SUMMARY's words.
        start: DTSTART's date.
        interval_weeks: RRULE weekly interval, or None when the event does not repeat.
        count: RRULE COUNT (occurrences before EXDATE removal), or None.
        until: RRULE UNTIL's date, or None.
        exdates: Dates removed.
        rdates: Dates added.
    """

    bin_types: tuple[BinType, ...]
    start: date
    interval_weeks: int | None = None
    count: int | None = None
    until: date | None = None
    exdates: frozenset[date] = frozenset()
    rdates: frozenset[date] = frozenset()

    def dates(self, start: date, end: date) -> list[date]:
        """This event's dates from ``start`` to ``end`` inclusive."""
        found = set(self.rdates)
        found.add(self.start)
        if self.interval_weeks is not None:
            last = min(d for d in (end, self.until) if d is not None)
            if self.count is not None:
                last = min(
                    last, self.start + timedelta(weeks=self.interval_weeks * (self.count - 1))
                )
            step = timedelta(weeks=self.interval_weeks)
            day = self.start
            while day <= last:
                found.add(day)
                day += step
        return sorted(d for d in found - self.exdates if start <= d <= end)


def _unfold(text: str) -> list[tuple[int, str]]:
    """Content lines with the number of the physical line each starts on."""
    lines: list[tuple[int, str]] = []
    for number, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if raw[:1] in {" ", "\t"} and lines:
            lines[-1] = (lines[-1][0], lines[-1][1] + raw[1:])
        elif raw.strip():
            lines.append((number, raw))
    return lines


def _date(value: str) -> date:
    """A DATE or DATE-TIME value's date (``20261201`` or ``20261201T070000Z``)."""
    if not value[:8].isdigit() or len(value) < 8:
        raise ValueError("expected YYYYMMDD")
    return date(int(value[:4]), int(value[4:6]), int(value[6:8]))


def _dates(value: str) -> set[date]:
    return {_date(part) for part in value.split(",") if part}


def _unescape(value: str) -> str:
    return value.replace("\\n", " ").replace("\\,", ",").replace("\\;", ";").replace("\\\\", "\\")


class _EventBuilder:
    """Collects one VEVENT's properties while parsing."""

    def __init__(self, path: str, line: int) -> None:
        self.path = path
        self.line = line
        self.props: dict[str, str] = {}
        self.rule: dict[str, str] = {}
        self.exdates: set[date] = set()
        self.rdates: set[date] = set()

    def fail(self, line: int, name: str, reason: str) -> ConfigError:
        return ConfigError(self.path, f"line {line}: {name}", reason)

    def add(self, line: int, name: str, value: str) -> None:
        try:
            if name == "EXDATE":
                self.exdates |= _dates(value)
            elif name == "RDATE":
                self.rdates |= _dates(value)
            elif name == "RRULE":
                self.rule = dict(part.split("=", 1) for part in value.split(";") if part)
                self.rule["_line"] = str(line)
            elif name in {"DTSTART", "SUMMARY", "CATEGORIES"}:
                if name == "DTSTART":
                    _date(value)
                self.props[name] = value
        except ValueError as exc:
            raise self.fail(line, name, f"cannot read {value!r}: {exc}") from exc

    def build(self) -> IcsEvent:
        if "DTSTART" not in self.props:
            raise self.fail(self.line, "VEVENT", "no DTSTART")
        start = _date(self.props["DTSTART"])
        words = _unescape(self.props.get("CATEGORIES") or self.props.get("SUMMARY", ""))
        bin_types = tuple(BinType.all_in(words))
        if not bin_types:
            raise self.fail(self.line, "SUMMARY", f"names no bin type: {words!r}")
        event = IcsEvent(
            bin_types, start, exdates=frozenset(self.exdates), rdates=frozenset(self.rdates)
        )
        if not self.rule:
            return event
        return self._with_rule(event)

    def _with_rule(self, event: IcsEvent) -> IcsEvent:
        rule = dict(self.rule)
        line = int(rule.pop("_line"))
        if rule.pop("FREQ", None) != "WEEKLY":
            raise self.fail(line, "RRULE", "only FREQ=WEEKLY is supported")
        byday = rule.pop("BYDAY", _WEEKDAYS[event.start.weekday()])
        if byday != _WEEKDAYS[event.start.weekday()]:
            raise self.fail(line, "RRULE", f"BYDAY={byday} differs from DTSTART's weekday")
        rule.pop("WKST", None)
        try:
            interval = int(rule.pop("INTERVAL", "1"))
            count = int(rule.pop("COUNT")) if "COUNT" in rule else None
            until = _date(rule.pop("UNTIL")) if "UNTIL" in rule else None
        except ValueError as exc:
            raise self.fail(line, "RRULE", str(exc)) from exc
        if rule:
            raise self.fail(line, "RRULE", f"unsupported parts: {', '.join(sorted(rule))}")
        if interval < 1 or (count is not None and count < 1):
            raise self.fail(line, "RRULE", "INTERVAL and COUNT must be positive")
        return IcsEvent(
            event.bin_types, event.start, interval, count, until, event.exdates, event.rdates
        )


def parse_calendar(text: str, path: str = "<ics>") -> list[IcsEvent]:
    """Parse the VEVENTs of an iCalendar document.

    Args:
        text: The document.
        path: Its file name or URL, for error messages.

    Raises:
        ConfigError: The document is not a VCALENDAR or an event uses what we cannot read.
    """
    lines = _unfold(text)
    if not lines or lines[0][1].strip().upper() != "BEGIN:VCALENDAR":
        raise ConfigError(path, "line 1", "not an iCalendar document (no BEGIN:VCALENDAR)")
    events: list[IcsEvent] = []
    current: _EventBuilder | None = None
    for number, line in lines:
        head, sep, value = line.partition(":")
        if not sep:
            raise ConfigError(path, f"line {number}", f"not a content line: {line[:40]!r}")
        name = head.split(";", 1)[0].upper()
        if name == "BEGIN" and value.upper() == "VEVENT":
            current = _EventBuilder(path, number)
        elif name == "END" and value.upper() == "VEVENT" and current is not None:
            events.append(current.build())
            current = None
        elif current is not None:
            current.add(number, name, value.strip())
    return events


class IcsScheduleSource(ScheduleSource):
    """Schedules published as one iCalendar feed per address.

    Feeds already carry any holiday changes (as EXDATE/RDATE or explicit dates), so no shift
    rule is applied; ``holidays`` is only used for working-day arithmetic.

    Args:
        addresses: The addresses served.
        feeds: Parsed events by UPRN.
        holidays: Bank holidays (for "within 2 working days" checks).
    """

    def __init__(
        self,
        addresses: Iterable[Address],
        feeds: Mapping[str, list[IcsEvent]],
        holidays: HolidayTable | None = None,
    ) -> None:
        self.holidays = holidays or HolidayTable()
        self.feeds = dict(feeds)
        self._by_uprn = {address.uprn: address for address in addresses}

    @classmethod
    def from_documents(
        cls,
        addresses: Iterable[Address],
        documents: Mapping[str, str],
        holidays: HolidayTable | None = None,
    ) -> IcsScheduleSource:
        """Parse one iCalendar document per UPRN (keys) into a source.

        Raises:
            ConfigError: A document cannot be parsed (the error names the UPRN's feed).
        """
        feeds = {uprn: parse_calendar(text, f"{uprn}.ics") for uprn, text in documents.items()}
        return cls(addresses, feeds, holidays)

    def addresses_at(self, postcode: str) -> list[Address]:
        """Every address at a normalised ``postcode``."""
        return [a for a in self._by_uprn.values() if a.postcode == postcode]

    def address(self, uprn: str) -> Address | None:
        """The address with this UPRN, or None."""
        return self._by_uprn.get(uprn)

    def collections(self, uprn: str, start: date, end: date) -> list[Collection]:
        """Collections from the UPRN's feed, from ``start`` to ``end`` inclusive."""
        found = {
            Collection(bin_type, day)
            for event in self.feeds.get(uprn, [])
            for day in event.dates(start, end)
            for bin_type in event.bin_types
        }
        order = list(BinType)
        return sorted(found, key=lambda c: (c.on, order.index(c.bin_type)))


def calendar_url(uprn: str, public_url: str | None = None) -> str:
    """Where residents subscribe to an address's collection calendar.

    Args:
        uprn: The address's UPRN.
        public_url: The console's public base URL; default ``COUNCIL_PUBLIC_URL`` from the
            environment, else :data:`DEFAULT_PUBLIC_URL` (a local demo).
    """
    base = public_url or settings.current().public_url or DEFAULT_PUBLIC_URL
    return base.rstrip("/") + CALENDAR_PATH.format(uprn=uprn)


def _fold(line: str) -> str:
    """Fold a content line at 75 octets (RFC 5545 section 3.1)."""
    data = line.encode()
    parts: list[str] = []
    while len(data) > 75:
        cut = 75 if not parts else 74
        while cut and (data[cut] & 0xC0) == 0x80:  # never split a UTF-8 character
            cut -= 1
        parts.append(data[:cut].decode())
        data = data[cut:]
    parts.append(data.decode())
    return "\r\n ".join(parts)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")


def export_calendar(
    uprn: str,
    source: ScheduleSource,
    start: date,
    *,
    days: int = 365,
    now: datetime | None = None,
) -> str:
    """An iCalendar document of the address's collections for ``days`` from ``start``.

    One all-day event per collection day, listing every bin collected that day.

    Raises:
        ConfigError: ``uprn`` is not an address the source knows.
    """
    address = source.address(uprn)
    if address is None:
        raise ConfigError("bin schedule", f"uprn {uprn}", "no such address")
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    council = council_profile()
    uid_domain = urlsplit(council.website).hostname or "localhost"
    by_day: dict[date, list[BinType]] = {}
    for collection in source.collections(uprn, start, start + timedelta(days=days - 1)):
        by_day.setdefault(collection.on, []).append(collection.bin_type)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        _fold(f"PRODID:-//{_escape(council.name)}//Council Responder bins//EN"),
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        _fold(f"X-WR-CALNAME:{_escape('Bin collections: ' + address.line)}"),
    ]
    for day, bin_types in by_day.items():
        labels = ", ".join(b.label for b in bin_types)
        lines += [
            "BEGIN:VEVENT",
            f"UID:{uprn}-{day:%Y%m%d}@{uid_domain}",
            f"DTSTAMP:{stamp}",
            f"DTSTART;VALUE=DATE:{day:%Y%m%d}",
            f"DTEND;VALUE=DATE:{day + timedelta(days=1):%Y%m%d}",
            _fold(f"SUMMARY:{_escape('Bin collection: ' + labels)}"),
            f"CATEGORIES:{','.join(b.value for b in bin_types)}",
            "TRANSP:TRANSPARENT",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"
