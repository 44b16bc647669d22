"""The profile's ``reports`` section (``docs/profile.md``).

Where problem reports go, how photos and places are checked, and the council's address
gazetteer (``reports.gazetteer``, a file relative to the profile's folder, read and checked here
so a missing or broken one refuses start-up).

:func:`read_reports` validates the section and raises :class:`~bot.errors.ConfigError` naming
the file and the dotted key (``reports.open311.endpoint``...), as the rest of the profile does.
Secrets are never in the profile: it names the environment variables that hold them
(``api_key_variable``, ``secret_variable``, ``password_variable``), read through
:mod:`bot.settings`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.errors import ConfigError, MissingSecretError
from bot.reports.gazetteer import gazetteer

__all__ = [
    "BACK_OFFICES",
    "Area",
    "Bounds",
    "EmailTarget",
    "Neighbour",
    "Open311Target",
    "Photos",
    "ReportsConfig",
    "S3Storage",
    "ServiceEntry",
    "WebhookTarget",
    "read_reports",
    "secret",
]

BACK_OFFICES = ("open311", "email", "webhook")
"""Where reports can go: an Open311 GeoReport v2 server, an e-mail inbox, a webhook."""

_VARIABLE = re.compile(r"[A-Z][A-Z0-9_]*")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def secret(environ: Mapping[str, str], variable: str, purpose: str) -> str:
    """The value of the environment variable ``variable`` (from :attr:`Settings.environ`).

    Raises:
        MissingSecretError: It is unset or empty.
    """
    value = environ.get(variable, "")
    if not value:
        raise MissingSecretError(variable, purpose)
    return value


@dataclass(frozen=True)
class Bounds:
    """A rectangle of latitude and longitude (WGS84 degrees)."""

    min_lat: float
    min_lon: float
    max_lat: float
    max_lon: float

    def contains(self, lat: float, lon: float) -> bool:
        """True when the point is inside (edges included)."""
        return self.min_lat <= lat <= self.max_lat and self.min_lon <= lon <= self.max_lon


@dataclass(frozen=True)
class Neighbour:
    """A neighbouring council, named to residents whose pin falls in its ``bounds``."""

    name: str
    bounds: Bounds


@dataclass(frozen=True)
class Area:
    """The council's area (``bounds``) and its neighbours."""

    bounds: Bounds
    neighbours: tuple[Neighbour, ...] = ()

    def neighbour_at(self, lat: float, lon: float) -> Neighbour | None:
        """The first neighbour whose bounds contain the point, if any."""
        return next((n for n in self.neighbours if n.bounds.contains(lat, lon)), None)


@dataclass(frozen=True)
class S3Storage:
    """An S3-compatible bucket for photos (credentials from the usual AWS variables)."""

    bucket: str
    endpoint_url: str = ""
    region: str = ""


@dataclass(frozen=True)
class Photos:
    """How residents' photos are checked, stored and shared with the back office."""

    keep_location: bool = False
    max_bytes: int = 10_000_000
    storage: str = "local"
    folder: str = ".data/media"
    url_ttl_hours: int = 72
    s3: S3Storage | None = None


@dataclass(frozen=True)
class Open311Target:
    """An Open311 GeoReport v2 server (``endpoint`` without the trailing ``/``)."""

    endpoint: str
    jurisdiction_id: str = ""
    api_key_variable: str = ""
    services_cache_minutes: int = 60
    poll_minutes: int = 5
    unconfirmed_after_minutes: int = 120


@dataclass(frozen=True)
class EmailTarget:
    """An inbox that receives each report as structured JSON by SMTP."""

    to: str
    sender: str
    smtp_host: str
    smtp_port: int = 25
    starttls: bool = False
    username: str = ""
    password_variable: str = ""


@dataclass(frozen=True)
class WebhookTarget:
    """A URL that receives each report as JSON, signed with HMAC-SHA256."""

    url: str
    secret_variable: str


@dataclass(frozen=True)
class ServiceEntry:
    """A report category (``reports.services``) and the team whose agents see its reports.

    Without Open311 these are the categories residents pick; with Open311 they only name the
    team of a service code.
    """

    code: str
    name: str
    team: str = ""


@dataclass(frozen=True)
class ReportsConfig:
    """The ``reports`` section (``docs/profile.md``).

    Attributes:
        back_office: ``open311`` | ``email`` | ``webhook``.
        gazetteer: The council's address gazetteer (``reports.gazetteer``, resolved against
            the profile's folder; checked when the profile is read).
        open311: The Open311 server (set when ``back_office`` is ``open311``).
        email: The e-mail target (when ``email``).
        webhook: The webhook target (when ``webhook``).
        services: Categories (email/webhook councils) or service code -> team (Open311).
        duplicate_radius_m: How far to look for someone else's open report of the same kind.
        photos: Photo checks and storage.
        area: The council's area and its neighbours (None: not checked).
    """

    back_office: str
    gazetteer: Path
    open311: Open311Target | None = None
    email: EmailTarget | None = None
    webhook: WebhookTarget | None = None
    services: tuple[ServiceEntry, ...] = ()
    duplicate_radius_m: int = 50
    photos: Photos = field(default_factory=Photos)
    area: Area | None = None

    def team_for(self, service_code: str, default: str) -> str:
        """The team whose agents see reports of ``service_code`` (``default`` when unnamed)."""
        for entry in self.services:
            if entry.code == service_code and entry.team:
                return entry.team
        return default


_TOP = (
    "back_office",
    "gazetteer",
    "open311",
    "email",
    "webhook",
    "services",
    "duplicate_radius_m",
    "photos",
    "area",
)


class _Section:
    def __init__(self, path: str, teams: Sequence[str]) -> None:
        self.path = path
        self.teams = teams

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.path, key, reason)

    def mapping(self, data: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(data, Mapping):
            raise self.fail(where, "must be a mapping of keys to values")
        return data

    def only(self, data: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
        unknown = sorted(str(k) for k in set(data) - set(allowed))
        if unknown:
            raise self.fail(f"{where}.{unknown[0]}", f"unknown key (expected {', '.join(allowed)})")

    def text(
        self, data: Mapping[str, Any], key: str, where: str, default: str | None = None
    ) -> str:
        value = data.get(key)
        if value is None and default is not None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where}.{key}", "must be non-empty text")
        return value.strip()

    def number(
        self, data: Mapping[str, Any], key: str, where: str, default: int, low: int, high: int
    ) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(
                f"{where}.{key}", f"must be a whole number from {low} to {high}, not {value!r}"
            )
        return value

    def flag(self, data: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{where}.{key}", "must be true or false")
        return value

    def url(self, data: Mapping[str, Any], key: str, where: str) -> str:
        value = self.text(data, key, where)
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise self.fail(f"{where}.{key}", f"must be an http(s):// address, not {value!r}")
        return value.rstrip("/")

    def variable(self, data: Mapping[str, Any], key: str, where: str, required: bool) -> str:
        value = data.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not _VARIABLE.fullmatch(value):
            raise self.fail(
                f"{where}.{key}",
                "must name an environment variable (capitals, digits, _), never the secret itself",
            )
        return value

    def email_address(self, data: Mapping[str, Any], key: str, where: str) -> str:
        value = self.text(data, key, where)
        if not _EMAIL.fullmatch(value):
            raise self.fail(f"{where}.{key}", f"not an e-mail address: {value!r}")
        return value

    def bounds(self, value: Any, where: str) -> Bounds:
        if (
            not isinstance(value, list)
            or len(value) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            raise self.fail(where, "must be [min_lat, min_lon, max_lat, max_lon] in degrees")
        min_lat, min_lon, max_lat, max_lon = (float(v) for v in value)
        if not (-90 <= min_lat < max_lat <= 90 and -180 <= min_lon < max_lon <= 180):
            raise self.fail(where, "must be [min_lat, min_lon, max_lat, max_lon], minimum first")
        return Bounds(min_lat, min_lon, max_lat, max_lon)

    def gazetteer(self, data: Mapping[str, Any], where: str) -> Path:
        key = f"{where}.gazetteer"
        name = data.get("gazetteer")
        if name is None or name == "":
            raise self.fail(
                key, "is missing: the council's address gazetteer (a CSV file, docs/reports.md)"
            )
        if not isinstance(name, str) or not name.strip():
            raise self.fail(key, "must be a file name, relative to the profile's folder")
        path = Path(self.path).parent / name.strip()
        if not path.is_file():
            raise self.fail(key, f"no such file: {path}")
        gazetteer(path)  # a bad row refuses start-up (the error names the file and line)
        return path

    def open311(self, data: Any, where: str) -> Open311Target:
        section = self.mapping(data, where)
        self.only(
            section,
            (
                "endpoint",
                "jurisdiction_id",
                "api_key_variable",
                "services_cache_minutes",
                "poll_minutes",
                "unconfirmed_after_minutes",
            ),
            where,
        )
        return Open311Target(
            endpoint=self.url(section, "endpoint", where),
            jurisdiction_id=self.text(section, "jurisdiction_id", where, ""),
            api_key_variable=self.variable(section, "api_key_variable", where, False),
            services_cache_minutes=self.number(
                section, "services_cache_minutes", where, 60, 1, 7 * 24 * 60
            ),
            poll_minutes=self.number(section, "poll_minutes", where, 5, 1, 24 * 60),
            unconfirmed_after_minutes=self.number(
                section, "unconfirmed_after_minutes", where, 120, 1, 24 * 60
            ),
        )

    def email(self, data: Any, where: str) -> EmailTarget:
        section = self.mapping(data, where)
        self.only(
            section,
            ("to", "from", "smtp_host", "smtp_port", "starttls", "username", "password_variable"),
            where,
        )
        return EmailTarget(
            to=self.email_address(section, "to", where),
            sender=self.email_address(section, "from", where)
            if "from" in section
            else self.email_address(section, "to", where),
            smtp_host=self.text(section, "smtp_host", where),
            smtp_port=self.number(section, "smtp_port", where, 25, 1, 65535),
            starttls=self.flag(section, "starttls", where, False),
            username=self.text(section, "username", where, ""),
            password_variable=self.variable(section, "password_variable", where, False),
        )

    def webhook(self, data: Any, where: str) -> WebhookTarget:
        section = self.mapping(data, where)
        self.only(section, ("url", "secret_variable"), where)
        return WebhookTarget(
            url=self.url(section, "url", where),
            secret_variable=self.variable(section, "secret_variable", where, True),
        )

    def services(self, data: Any, where: str) -> tuple[ServiceEntry, ...]:
        if not isinstance(data, list):
            raise self.fail(where, "must be a list of {code, name, team}")
        found = []
        for index, item in enumerate(data):
            at = f"{where}[{index}]"
            entry = self.mapping(item, at)
            self.only(entry, ("code", "name", "team"), at)
            team = self.text(entry, "team", at, "")
            if team and team not in self.teams:
                raise self.fail(f"{at}.team", f"unknown team {team!r}")
            code = self.text(entry, "code", at)
            found.append(ServiceEntry(code, self.text(entry, "name", at, code), team))
        return tuple(found)

    def photos(self, data: Any, where: str) -> Photos:
        section = self.mapping(data, where)
        self.only(
            section,
            ("keep_location", "max_bytes", "storage", "folder", "url_ttl_hours", "s3"),
            where,
        )
        storage = self.text(section, "storage", where, "local")
        if storage not in {"local", "s3"}:
            raise self.fail(f"{where}.storage", f"must be local or s3, not {storage!r}")
        s3 = None
        if storage == "s3" or "s3" in section:
            s3_data = self.mapping(section.get("s3"), f"{where}.s3")
            self.only(s3_data, ("bucket", "endpoint_url", "region"), f"{where}.s3")
            s3 = S3Storage(
                bucket=self.text(s3_data, "bucket", f"{where}.s3"),
                endpoint_url=self.url(s3_data, "endpoint_url", f"{where}.s3")
                if "endpoint_url" in s3_data
                else "",
                region=self.text(s3_data, "region", f"{where}.s3", ""),
            )
        return Photos(
            keep_location=self.flag(section, "keep_location", where, False),
            max_bytes=self.number(section, "max_bytes", where, 10_000_000, 1_000, 100_000_000),
            storage=storage,
            folder=self.text(section, "folder", where, ".data/media"),
            url_ttl_hours=self.number(section, "url_ttl_hours", where, 72, 1, 24 * 90),
            s3=s3,
        )

    def area(self, data: Any, where: str) -> Area:
        section = self.mapping(data, where)
        self.only(section, ("bounds", "neighbours"), where)
        neighbours = section.get("neighbours", [])
        if not isinstance(neighbours, list):
            raise self.fail(f"{where}.neighbours", "must be a list of {name, bounds}")
        found = []
        for index, item in enumerate(neighbours):
            at = f"{where}.neighbours[{index}]"
            entry = self.mapping(item, at)
            self.only(entry, ("name", "bounds"), at)
            found.append(
                Neighbour(
                    self.text(entry, "name", at), self.bounds(entry.get("bounds"), f"{at}.bounds")
                )
            )
        return Area(self.bounds(section.get("bounds"), f"{where}.bounds"), tuple(found))

    def reports(self, data: Any) -> ReportsConfig:
        where = "reports"
        section = self.mapping(data, where)
        self.only(section, _TOP, where)
        back_office = self.text(section, "back_office", where)
        if back_office not in BACK_OFFICES:
            raise self.fail(
                f"{where}.back_office",
                f"must be one of {', '.join(BACK_OFFICES)}, not {back_office!r}",
            )
        if back_office not in section:
            raise self.fail(f"{where}.{back_office}", f"is missing (back_office is {back_office})")
        services = self.services(section.get("services", []), f"{where}.services")
        if back_office != "open311" and not services:
            raise self.fail(
                f"{where}.services",
                "is missing: without Open311, the profile lists the categories residents pick",
            )
        return ReportsConfig(
            back_office=back_office,
            gazetteer=self.gazetteer(section, where),
            open311=self.open311(section["open311"], f"{where}.open311")
            if "open311" in section
            else None,
            email=self.email(section["email"], f"{where}.email") if "email" in section else None,
            webhook=self.webhook(section["webhook"], f"{where}.webhook")
            if "webhook" in section
            else None,
            services=services,
            duplicate_radius_m=self.number(section, "duplicate_radius_m", where, 50, 1, 5_000),
            photos=self.photos(section.get("photos", {}), f"{where}.photos"),
            area=self.area(section["area"], f"{where}.area") if "area" in section else None,
        )


def read_reports(data: Any, path: str, teams: Sequence[str]) -> ReportsConfig:
    """Validate the profile's ``reports`` section (``data``) read from ``path``.

    ``teams`` are the profile's team ids (a service's ``team`` must be one of them).

    Raises:
        ConfigError: A key is missing, unknown, of the wrong type or has a bad value.
    """
    return _Section(path, teams).reports(data)
