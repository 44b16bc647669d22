"""The council profile: everything that makes the product one council's, read from one file.

``council.yml`` at the project root (or the file named by ``COUNCIL_PROFILE``) holds the
council's name and borough, its web addresses, contact centre numbers, opening hours and
closed days (bank holidays from a file in GOV.UK's ``bank-holidays.json`` format), the
safeguarding contacts residents at risk are given, the teams and which topics go to which,
the service levels, how residents name the bins, the channels' display names and how long
each kind of residents' data is kept (``retention``). Teams may
be marked ``welsh_speaking``: conversations in Welsh are routed to them (``docs/welsh.md``).
``docs/profile.md`` describes every key.

:meth:`CouncilProfile.load` validates the whole file and raises
:class:`~bot.errors.ConfigError` naming the file, the dotted key and the reason, so a
mistake stops start-up instead of reaching a resident. :func:`current` loads the profile once
per process; tests inject their own with :func:`use`.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bot import settings
from bot.errors import ConfigError
from bot.handoff.hours import OpeningHours
from bot.nlu.postcodes import normalise_postcode
from bot.reports.config import ReportsConfig, read_reports
from bot.webchat.config import WebChatConfig, read_section

if TYPE_CHECKING:
    from bot.handoff.sla import SlaPolicy

__all__ = [
    "BIN_TYPES",
    "DEFAULT_PATH",
    "MAX_REPORT_QUESTION_DAYS",
    "NOTICE_DAYS",
    "BinNames",
    "ClosedDays",
    "Contact",
    "CouncilProfile",
    "Retention",
    "Routing",
    "Safeguarding",
    "bank_holiday_notice",
    "current",
    "profile_path",
    "uk_phone_number",
    "use",
]

logger = logging.getLogger(__name__)

DEFAULT_PATH = settings.DEFAULT_PROFILE
"""The demo profile at the project root, used when ``COUNCIL_PROFILE`` is unset."""

NOTICE_DAYS = 60
"""Warn this many days before the bank-holiday table runs out."""

# National numbers (0 + 9 or 10 digits, or +44 without the 0) and the short numbers a
# safeguarding reply may give: 999, 112, 101, 105, 111, and the 116/118 six-digit services.
_PHONE = re.compile(r"(?:0[1-9]\d{8,9}|\+44[1-9]\d{8,9}|999|112|101|105|111|11[68]\d{3})")
_PHONE_SEPARATORS = re.compile(r"[ \-()]")
BIN_TYPES = ("general", "recycling", "garden", "food")
"""The codes of the bins the council empties (:class:`bot.bins.model.BinType` values)."""
_SECTIONS = (
    "council",
    "contact_centre",
    "opening_hours",
    "closed_days",
    "safeguarding",
    "teams",
    "routing",
    "service_levels",
    "channels",
    "bins",
    "retention",
    "reports",
    "webchat",
)
# profile key -> Retention field
_RETENTION_KEYS = {
    "conversations": "conversation_days",
    "handoff_cases": "handoff_days",
    "failed_messages": "failed_days",
    "missed_bin_reports": "missed_bin_days",
    "audit_log": "audit_days",
    "report_questions": "report_question_days",
    "problem_reports": "problem_report_days",
}
# Retention keys a profile may leave out (added after councils had written theirs)
_OPTIONAL_RETENTION = frozenset({"problem_reports"})
# Retention field -> (environment variable, bot.settings.Settings attribute) that overrides it
_RETENTION_OVERRIDES = {
    "handoff_days": ("COUNCIL_HANDOFF_RETENTION_DAYS", "handoff_retention_days"),
    "failed_days": ("COUNCIL_FAILED_MESSAGE_RETENTION_DAYS", "failed_message_retention_days"),
    "missed_bin_days": ("COUNCIL_MISSED_BIN_RETENTION_DAYS", "missed_bin_retention_days"),
    "audit_days": ("COUNCIL_AUDIT_RETENTION_DAYS", "audit_retention_days"),
}
MAX_REPORT_QUESTION_DAYS = 400
"""Reports' copies of unanswered questions expire by themselves after this many days."""


def uk_phone_number(text: str) -> bool:
    """True when ``text`` is a UK number: "020 7946 0000", "+44 20 7946 0000", "111"."""
    return _PHONE.fullmatch(_PHONE_SEPARATORS.sub("", text)) is not None


@dataclass(frozen=True)
class Contact:
    """A number residents are given.

    Attributes:
        name: Who answers ("Samaritans").
        phone: The number as residents should read it ("0800 123 4567").
        note: When or at what cost, in words ("free, any time"); may be empty.
    """

    name: str
    phone: str
    note: str = ""

    def sentence(self) -> str:
        """The contact as a sentence: ``Helpline: 0800 123 4567 (free, any time).``."""
        note = f" ({self.note})" if self.note else ""
        return f"{self.name}: {self.phone}{note}."


@dataclass(frozen=True)
class Safeguarding:
    """What a resident who may be at risk is told first.

    Attributes:
        emergency: The emergency instruction ("If anyone is in immediate danger, call 999.").
        out_of_hours: The council's own out-of-hours social care numbers.
        helplines: National helplines.
    """

    emergency: str
    out_of_hours: tuple[Contact, ...]
    helplines: tuple[Contact, ...]

    def contacts_text(self) -> str:
        """The emergency instruction, the helplines, then the local out-of-hours numbers."""
        sentences = [self.emergency, *(c.sentence() for c in (*self.helplines, *self.out_of_hours))]
        return " ".join(sentences)


@dataclass(frozen=True)
class ClosedDays:
    """Days the contact centre is closed besides weekends.

    Attributes:
        bank_holidays_file: The GOV.UK-format file the bank holidays came from.
        division: The division read from it (``england-and-wales``, ``scotland``...).
        dates: Bank holidays plus the council's own closed days.
        covered_until: The last day the bank-holiday table covers (31 December of its last
            year); later bank holidays are unknown.
    """

    bank_holidays_file: str
    division: str
    dates: frozenset[date]
    covered_until: date

    def notice(self, today: date) -> str | None:
        """A warning for staff when the table runs out within :data:`NOTICE_DAYS` days."""
        left = (self.covered_until - today).days
        if left > NOTICE_DAYS:
            return None
        when = "ran out on" if left < 0 else "runs out on"
        return (
            f"The bank-holiday table {self.bank_holidays_file} ({self.division}) {when} "
            f"{self.covered_until.isoformat()}. Replace it with a current copy of "
            "https://www.gov.uk/bank-holidays.json: after that date bank holidays count as "
            "working days in out-of-hours replies and service levels."
        )


@dataclass(frozen=True)
class BinNames:
    """How residents name one of the council's bins.

    Attributes:
        label: In replies ("recycling (blue bin)").
        words: Words that pick it in a resident's message, matched inside words ("recycl",
            "blue").
        cy: In Welsh replies ("ailgylchu (bin glas)"); empty: the English label.
    """

    label: str
    words: tuple[str, ...]
    cy: str = ""

    def label_in(self, language: str) -> str:
        """How a reply in ``language`` (``en``, ``cy``) names the bin."""
        return self.cy if language == "cy" and self.cy else self.label


@dataclass(frozen=True)
class Retention:
    """How long each kind of residents' data is kept, in days (UK GDPR: storage limitation).

    The profile's ``retention`` section sets them; :meth:`in_force` applies the environment
    variables that override some. The scheduled sweep (:mod:`bot.residents.schedule`) removes
    what is older.

    Attributes:
        handoff_days: Closed handoff cases (record, messages, notes, timings, events), counted
            from when they were closed.
        failed_days: Failed sends and inbox dead letters.
        conversation_days: Conversations (Rasa trackers and what the channels keep about
            them), counted from their last message.
        missed_bin_days: Missed-bin reports, from when they were made.
        audit_days: Audit log entries.
        report_question_days: The reports' redacted copies of unanswered questions (at most
            :data:`MAX_REPORT_QUESTION_DAYS`).
        problem_report_days: Problem reports (issue 15) and their update subscriptions, from
            when they were made (optional key ``problem_reports``, default 365).
    """

    handoff_days: int = 365
    failed_days: int = 30
    conversation_days: int = 90
    missed_bin_days: int = 90
    audit_days: int = 365
    report_question_days: int = MAX_REPORT_QUESTION_DAYS
    problem_report_days: int = 365

    def in_force(self, shared: settings.Settings) -> Retention:
        """These periods, with those whose environment variable is set taken from ``shared``.

        ``COUNCIL_HANDOFF_RETENTION_DAYS``, ``COUNCIL_FAILED_MESSAGE_RETENTION_DAYS``,
        ``COUNCIL_MISSED_BIN_RETENTION_DAYS`` and ``COUNCIL_AUDIT_RETENTION_DAYS`` override
        the profile (docs/configuration.md); unset, the profile's value stands.
        """
        changes = {
            name: getattr(shared, attribute)
            for name, (variable, attribute) in _RETENTION_OVERRIDES.items()
            if variable in shared.environ
        }
        return replace(self, **changes)


@dataclass(frozen=True)
class Routing:
    """Which team gets a handed-off conversation.

    Attributes:
        default: The team for topics not listed.
        safeguarding: The team every safeguarding case goes to.
        topics: Topic (intent) -> team.
        welsh_speaking: The teams that answer residents in Welsh.
    """

    default: str
    safeguarding: str
    topics: Mapping[str, str]
    welsh_speaking: frozenset[str] = frozenset()

    def team_for(self, topic: str, reason: str, *, welsh: bool = False) -> str:
        """The team for a topic; safeguarding cases always go to the safeguarding team.

        A conversation in Welsh (``welsh``) goes to the topic's team when it speaks Welsh,
        else to the default team when that does, else to the first Welsh-speaking team by
        id. Safeguarding is never rerouted: safety comes first, so mark the safeguarding team
        ``welsh_speaking`` when it can answer in Welsh.
        """
        if reason == "safeguarding":
            return self.safeguarding
        team = self.topics.get(topic, self.default)
        if not welsh or not self.welsh_speaking or team in self.welsh_speaking:
            return team
        if self.default in self.welsh_speaking:
            return self.default
        return min(self.welsh_speaking)


@dataclass(frozen=True)
class CouncilProfile:
    """One council's profile (see the module docstring and ``docs/profile.md``).

    Attributes:
        path: The file it was read from.
        name: The council's full name ("Example Borough Council").
        short_name: The name residents use ("Example").
        borough: The area, as replies name it ("isn't in {borough}").
        example_postcode: A postcode of the area, shown when residents are asked for theirs.
        fictional: True for demo councils.
        website: The council's website.
        report_url: Where residents report problems online.
        contact_centre: The contact centre's numbers (the first is the main one).
        hours: Opening hours with the closed days.
        closed_days: Where the closed days came from and how far they reach.
        safeguarding: Emergency text, out-of-hours numbers and helplines.
        teams: Team id -> display name.
        routing: Topic -> team (and which teams speak Welsh).
        service_levels: Targets per priority and team, counted in ``hours``.
        channels: Channel name -> display name.
        bins: Bin code (``general``, ``recycling``, ``garden``, ``food``) -> its names.
        retention: How long each kind of residents' data is kept (before the environment's
            overrides: use :meth:`retention_in_force`).
        reports: Problem reports: back office, photos, area (None: no ``reports`` section,
            residents are given ``report_url``).
        webchat: The website chat (None: no ``webchat`` section, the edge serves none).
    """

    path: str
    name: str
    short_name: str
    borough: str
    example_postcode: str
    fictional: bool
    website: str
    report_url: str
    contact_centre: tuple[Contact, ...]
    hours: OpeningHours
    closed_days: ClosedDays
    safeguarding: Safeguarding
    teams: Mapping[str, str]
    routing: Routing
    service_levels: SlaPolicy
    channels: Mapping[str, str] = field(default_factory=dict)
    bins: Mapping[str, BinNames] = field(default_factory=dict)
    retention: Retention = field(default_factory=Retention)
    reports: ReportsConfig | None = None
    webchat: WebChatConfig | None = None

    @classmethod
    def load(cls, path: str | Path) -> CouncilProfile:
        """Read and validate a profile.

        Raises:
            ConfigError: The file cannot be read, is not YAML, or a key is missing, of the
                wrong type or has a bad value (unknown team, malformed phone number...); the
                error names the file and the dotted key.
        """
        return _Reader(Path(path)).profile()

    def retention_in_force(self, shared: settings.Settings | None = None) -> Retention:
        """The retention periods with the environment's overrides (default: this process')."""
        return self.retention.in_force(shared or settings.current())

    @property
    def team_ids(self) -> tuple[str, ...]:
        """Every team a case can be routed or reassigned to, sorted."""
        return tuple(sorted(self.teams))

    def channel_name(self, channel: str) -> str:
        """The display name of a channel (its own name when the profile has none)."""
        return self.channels.get(channel, channel)

    def response_variables(self) -> dict[str, str]:
        """Values every response may use: ``{council_name}``, ``{safeguarding_contacts}``..."""
        return {
            "council_name": self.name,
            "council_short_name": self.short_name,
            "borough": self.borough,
            "example_postcode": self.example_postcode,
            "website": self.website,
            "report_url": self.report_url,
            "contact_phone": self.contact_centre[0].phone,
            "emergency": self.safeguarding.emergency,
            "helplines": " ".join(c.sentence() for c in self.safeguarding.helplines),
            "out_of_hours_contacts": " ".join(c.sentence() for c in self.safeguarding.out_of_hours),
            "safeguarding_contacts": self.safeguarding.contacts_text(),
        }

    def phone_numbers(self) -> list[str]:
        """Every number in the profile, as written."""
        contacts = (
            *self.contact_centre,
            *self.safeguarding.out_of_hours,
            *self.safeguarding.helplines,
        )
        return [c.phone for c in contacts]


class _Reader:
    """Reads one profile file, naming the key at fault in every error."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(str(self.path), key, reason)

    def mapping(self, data: Mapping[str, Any], key: str, where: str = "") -> Mapping[str, Any]:
        value = self.value(data, key, where)
        if not isinstance(value, Mapping):
            raise self.fail(_join(where, key), "must be a mapping of keys to values")
        return value

    def value(self, data: Mapping[str, Any], key: str, where: str = "") -> Any:
        if key not in data or data[key] is None:
            raise self.fail(_join(where, key), "is missing")
        return data[key]

    def text(self, data: Mapping[str, Any], key: str, where: str = "") -> str:
        value = self.value(data, key, where)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(_join(where, key), "must be non-empty text")
        return value.strip()

    def url(self, data: Mapping[str, Any], key: str, where: str) -> str:
        value = self.text(data, key, where)
        if not value.startswith("https://"):
            raise self.fail(_join(where, key), f"must be an https:// address, not {value!r}")
        return value

    def postcode(self, data: Mapping[str, Any], key: str, where: str) -> str:
        value = self.text(data, key, where)
        postcode = normalise_postcode(value)
        if postcode is None:
            raise self.fail(_join(where, key), f"not a UK postcode: {value!r}")
        return postcode

    def only(self, data: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
        unknown = sorted(str(k) for k in set(data) - set(allowed))
        if unknown:
            raise self.fail(
                _join(where, unknown[0]), f"unknown key (expected {', '.join(allowed)})"
            )

    def contacts(self, data: Mapping[str, Any], key: str, where: str) -> tuple[Contact, ...]:
        items = self.value(data, key, where)
        place = _join(where, key)
        if not isinstance(items, list) or not items:
            raise self.fail(place, "must be a list of contacts (name, phone, optional note)")
        found = []
        for index, item in enumerate(items):
            at = f"{place}[{index}]"
            if not isinstance(item, Mapping):
                raise self.fail(at, "must be a mapping with name and phone")
            self.only(item, ("name", "phone", "note"), at)
            phone = self.value(item, "phone", at)
            if not isinstance(phone, str):
                raise self.fail(f"{at}.phone", 'must be text in quotes, e.g. "020 7946 0000"')
            if not uk_phone_number(phone):
                raise self.fail(f"{at}.phone", f"not a UK phone number: {phone!r}")
            note = item.get("note", "")
            if not isinstance(note, str):
                raise self.fail(f"{at}.note", "must be text")
            found.append(Contact(self.text(item, "name", at), phone.strip(), note.strip()))
        return tuple(found)

    def names(self, data: Mapping[str, Any], key: str) -> dict[str, str]:
        value = self.mapping(data, key)
        if not value:
            raise self.fail(key, "must name at least one")
        for name, label in value.items():
            if not isinstance(label, str) or not label.strip():
                raise self.fail(f"{key}.{name}", "must be a display name (text)")
        return {str(name): str(label).strip() for name, label in value.items()}

    def profile(self) -> CouncilProfile:
        data = _read_yaml(self.path)
        self.only(data, _SECTIONS, "")
        council = self.mapping(data, "council")
        self.only(
            council,
            (
                "name",
                "short_name",
                "borough",
                "example_postcode",
                "fictional",
                "website",
                "report_url",
            ),
            "council",
        )
        fictional = council.get("fictional", False)
        if not isinstance(fictional, bool):
            raise self.fail("council.fictional", "must be true or false")
        closed_days = self.closed_days(self.mapping(data, "closed_days"))
        hours = self.hours(self.mapping(data, "opening_hours"), closed_days)
        teams, welsh_speaking = self.teams(data)
        routing = self.routing(self.mapping(data, "routing"), teams, welsh_speaking)
        return CouncilProfile(
            path=str(self.path),
            name=self.text(council, "name", "council"),
            short_name=self.text(council, "short_name", "council"),
            borough=self.text(council, "borough", "council"),
            example_postcode=self.postcode(council, "example_postcode", "council"),
            fictional=fictional,
            website=self.url(council, "website", "council"),
            report_url=self.url(council, "report_url", "council"),
            contact_centre=self.contacts(data, "contact_centre", ""),
            hours=hours,
            closed_days=closed_days,
            safeguarding=self.safeguarding(self.mapping(data, "safeguarding")),
            teams=teams,
            routing=routing,
            service_levels=self.service_levels(data, hours, teams),
            channels=self.names(data, "channels"),
            bins=self.bins(self.mapping(data, "bins")),
            retention=self.retention(self.mapping(data, "retention")),
            reports=read_reports(data["reports"], str(self.path), tuple(teams))
            if "reports" in data
            else None,
            webchat=read_section(data.get("webchat"), str(self.path)),
        )

    def retention(self, data: Mapping[str, Any]) -> Retention:
        self.only(data, tuple(_RETENTION_KEYS), "retention")
        days = {}
        for key, name in _RETENTION_KEYS.items():
            if key in _OPTIONAL_RETENTION and key not in data:
                continue
            value = self.value(data, key, "retention")
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise self.fail(
                    f"retention.{key}", f"must be a whole number of days, not {value!r}"
                )
            days[name] = value
        if days["report_question_days"] > MAX_REPORT_QUESTION_DAYS:
            raise self.fail(
                "retention.report_questions",
                f"at most {MAX_REPORT_QUESTION_DAYS} days (reports' copies expire then)",
            )
        return Retention(**days)

    def bins(self, data: Mapping[str, Any]) -> dict[str, BinNames]:
        self.only(data, BIN_TYPES, "bins")
        found = {}
        for code in BIN_TYPES:
            names = self.mapping(data, code, "bins")
            where = f"bins.{code}"
            self.only(names, ("label", "words", "cy"), where)
            words = self.value(names, "words", where)
            if (
                not isinstance(words, list)
                or not words
                or not all(isinstance(w, str) and w.strip() for w in words)
            ):
                raise self.fail(f"{where}.words", "must be a list of words such as [blue, recycl]")
            label = self.text(names, "label", where)
            welsh = self.text(names, "cy", where) if "cy" in names else ""
            found[code] = BinNames(label, tuple(w.strip().lower() for w in words), welsh)
        return found

    def closed_days(self, data: Mapping[str, Any]) -> ClosedDays:
        self.only(data, ("bank_holidays", "division", "also"), "closed_days")
        name = self.text(data, "bank_holidays", "closed_days")
        division = self.text(data, "division", "closed_days")
        file = self.path.parent / name
        holidays = _gov_uk_bank_holidays(file, division)
        also = data.get("also") or []
        if not isinstance(also, list):
            raise self.fail("closed_days.also", "must be a list of dates such as 2026-12-24")
        try:
            extra = {d if isinstance(d, date) else date.fromisoformat(str(d)) for d in also}
        except ValueError as error:
            raise self.fail(
                "closed_days.also", f"must be dates such as 2026-12-24 ({error})"
            ) from None
        return ClosedDays(
            bank_holidays_file=str(file),
            division=division,
            dates=frozenset(holidays | extra),
            covered_until=date(max(holidays).year, 12, 31),
        )

    def hours(self, data: Mapping[str, Any], closed: ClosedDays) -> OpeningHours:
        keys = ("open", "close", "weekdays", "zone")
        self.only(data, keys, "opening_hours")
        for key in keys:
            self.value(data, key, "opening_hours")
        try:
            holidays = sorted(day.isoformat() for day in closed.dates)
            return OpeningHours.from_mapping({**data, "holidays": holidays})
        except (KeyError, TypeError, ValueError) as error:
            raise self.fail("opening_hours", str(error.args[0])) from None

    def safeguarding(self, data: Mapping[str, Any]) -> Safeguarding:
        self.only(data, ("emergency", "out_of_hours", "helplines"), "safeguarding")
        return Safeguarding(
            emergency=self.text(data, "emergency", "safeguarding"),
            out_of_hours=self.contacts(data, "out_of_hours", "safeguarding"),
            helplines=self.contacts(data, "helplines", "safeguarding"),
        )

    def teams(self, data: Mapping[str, Any]) -> tuple[dict[str, str], frozenset[str]]:
        """Team id -> display name, and the Welsh-speaking teams.

        A team is ``id: Display name`` or ``id: {name: Display name, welsh_speaking: true}``.
        """
        value = self.mapping(data, "teams")
        if not value:
            raise self.fail("teams", "must name at least one")
        names, welsh = {}, set()
        for team, item in value.items():
            where = f"teams.{team}"
            if isinstance(item, Mapping):
                self.only(item, ("name", "welsh_speaking"), where)
                flag = item.get("welsh_speaking", False)
                if not isinstance(flag, bool):
                    raise self.fail(f"{where}.welsh_speaking", "must be true or false")
                if flag:
                    welsh.add(str(team))
                names[str(team)] = self.text(item, "name", where)
            elif isinstance(item, str) and item.strip():
                names[str(team)] = item.strip()
            else:
                raise self.fail(
                    where, "must be a display name, or {name: ..., welsh_speaking: true}"
                )
        return names, frozenset(welsh)

    def routing(
        self, data: Mapping[str, Any], teams: Mapping[str, str], welsh_speaking: frozenset[str]
    ) -> Routing:
        self.only(data, ("default", "safeguarding", "topics"), "routing")

        def team(key: str, value: Any) -> str:
            if value not in teams:
                raise self.fail(key, f"unknown team {value!r} (teams: {', '.join(sorted(teams))})")
            return str(value)

        topics = self.mapping(data, "topics", "routing")
        return Routing(
            default=team("routing.default", self.text(data, "default", "routing")),
            safeguarding=team("routing.safeguarding", self.text(data, "safeguarding", "routing")),
            topics={str(t): team(f"routing.topics.{t}", v) for t, v in topics.items()},
            welsh_speaking=welsh_speaking,
        )

    def service_levels(
        self, data: Mapping[str, Any], hours: OpeningHours, teams: Mapping[str, str]
    ) -> SlaPolicy:
        from bot.handoff.sla import SlaPolicy  # sla -> record -> profile: import when used

        levels = self.mapping(data, "service_levels")
        self.only(levels, ("P1", "P2", "P3", "teams"), "service_levels")
        for team in levels.get("teams") or {}:
            if team not in teams:
                raise self.fail(f"service_levels.teams.{team}", f"unknown team {team!r}")
        try:
            return SlaPolicy.from_mapping(levels, hours=hours)
        except ConfigError as error:
            raise self.fail(_join("service_levels", error.key), error.reason) from None


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _read_yaml(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(str(path), "", f"cannot be read: {error.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise ConfigError(str(path), where, f"invalid YAML: {error}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(str(path), "", "must be a mapping of keys to values")
    return data


def _gov_uk_bank_holidays(path: Path, division: str) -> set[date]:
    """The dates of one division of a file in GOV.UK's ``bank-holidays.json`` format."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(str(path), "", f"cannot be read: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise ConfigError(str(path), f"line {error.lineno}", f"not JSON: {error.msg}") from None
    if not isinstance(data, Mapping) or not isinstance(data.get(division), Mapping):
        found = ", ".join(sorted(data)) if isinstance(data, Mapping) else "nothing"
        raise ConfigError(str(path), division, f"no such division (the file has {found})")
    events = data[division].get("events")
    if not isinstance(events, list) or not events:
        raise ConfigError(str(path), f"{division}.events", "must be a non-empty list")
    dates = set()
    for index, event in enumerate(events):
        try:
            dates.add(date.fromisoformat(event["date"]))
        except (KeyError, TypeError, ValueError):
            raise ConfigError(
                str(path), f"{division}.events[{index}].date", "must be a date such as 2027-12-27"
            ) from None
    return dates


_lock = threading.Lock()
_current: CouncilProfile | None = None


def profile_path() -> Path:
    """The profile file of this process: ``COUNCIL_PROFILE``, else ``council.yml``."""
    return settings.current().profile_path


def current() -> CouncilProfile:
    """This process' profile, loaded (and validated) on first use.

    Logs a warning when the bank-holiday table runs out within :data:`NOTICE_DAYS` days.

    Raises:
        ConfigError: The profile is invalid (file, key and reason).
    """
    global _current  # one profile per process, like the settings it is part of
    with _lock:
        if _current is None:
            _current = CouncilProfile.load(profile_path())
            notice = _current.closed_days.notice(date.today())
            if notice:
                logger.warning("%s", notice)
        return _current


def use(profile: CouncilProfile | None) -> CouncilProfile | None:
    """Make ``profile`` this process' profile (None: load again on next use); return the old one.

    For tests, and for a process that loaded its profile itself at start.
    """
    global _current
    with _lock:
        previous, _current = _current, profile
        return previous


def bank_holiday_notice(today: date | None = None) -> str | None:
    """The notice staff should see when this process' bank-holiday table runs out soon.

    None while it covers more than :data:`NOTICE_DAYS` days from ``today`` (default: today).
    """
    return current().closed_days.notice(today or date.today())
