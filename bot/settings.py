"""This process' settings: the environment, read once at start into one typed object.

Every variable is documented in ``docs/configuration.md``. :meth:`Settings.from_env` checks
them all (a bad value is a :class:`~bot.errors.ConfigError` naming the variable), and
:func:`current` reads ``os.environ`` once per process; entry points call it at start and pass
the object (or the values they need) down, and code that Rasa instantiates itself (tracker
store, channel inputs, actions) calls :func:`current`. No other module of ``bot`` or
``actions`` reads the environment (``tests/test_settings.py`` scans for it): children's
environments are built from :attr:`Settings.environ` (:func:`bot.services.base_env`), and
:mod:`bot.nlu.embedder` only sets the Hugging Face libraries' offline switches.

Tests inject settings with :func:`use` (``bot.testing.plugin`` forgets them after each test,
so a test may also set variables with ``monkeypatch.setenv`` before the code under test
first asks for them).
"""

from __future__ import annotations

import ipaddress
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from bot.errors import ConfigError
from bot.web.proxies import parse_trusted_proxies

__all__ = ["DEFAULT_PROFILE", "ENVIRONMENT", "Settings", "current", "use"]

ENVIRONMENT = "environment"
"""What :class:`~bot.errors.ConfigError` names as the 'file' of a bad variable."""

DEFAULT_PROFILE = Path(__file__).resolve().parent.parent / "council.yml"
"""The fictional demo council's profile, used when ``COUNCIL_PROFILE`` is unset."""

_REDIS_SCHEMES = {"redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel"}
_MIN_HEALTH_TOKEN = 32


def _text(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(name, "").strip() or default


def _days(env: Mapping[str, str], name: str, default: int) -> int:
    raw = _text(env, name)
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(ENVIRONMENT, name, f"must be a positive number of days, got {raw!r}")
    return int(raw)


def _url(env: Mapping[str, str], name: str, default: str = "") -> str:
    value = _text(env, name, default)
    if value and (urlsplit(value).scheme not in {"http", "https"} or not urlsplit(value).netloc):
        raise ConfigError(ENVIRONMENT, name, f"not an http(s) URL: {value!r}")
    return value


def _redis_url(env: Mapping[str, str]) -> str:
    value = _text(env, "REDIS_URL")
    if value and urlsplit(value).scheme not in _REDIS_SCHEMES:
        # the value may hold a password: name the scheme only
        scheme = urlsplit(value).scheme or "no scheme"
        raise ConfigError(ENVIRONMENT, "REDIS_URL", f"not a redis:// URL ({scheme})")
    return value


def _internal_host(env: Mapping[str, str]) -> str:
    value = _text(env, "COUNCIL_INTERNAL_HOST", "127.0.0.1")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(ENVIRONMENT, "COUNCIL_INTERNAL_HOST", "must be an IP address") from None
    if address.is_unspecified or not (address.is_loopback or address.is_private):
        raise ConfigError(
            ENVIRONMENT,
            "COUNCIL_INTERNAL_HOST",
            f"{value} is not a loopback or private address (Rasa must not face the internet)",
        )
    return value


def _today(env: Mapping[str, str]) -> date | None:
    raw = _text(env, "COUNCIL_TODAY")
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ConfigError(ENVIRONMENT, "COUNCIL_TODAY", f"not a YYYY-MM-DD date: {raw!r}") from None


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _text(env, name)
    if not raw:
        return default
    if raw not in {"0", "1"}:
        raise ConfigError(ENVIRONMENT, name, "must be 1 or 0")
    return raw == "1"


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = _text(env, name)
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(ENVIRONMENT, name, f"not a port number: {raw!r}")
    return int(raw)


def _long_secret(env: Mapping[str, str], name: str) -> str:
    token = env.get(name, "")
    if token and len(token) < _MIN_HEALTH_TOKEN:
        raise ConfigError(ENVIRONMENT, name, f"use at least {_MIN_HEALTH_TOKEN} random characters")
    return token


def _health_token(env: Mapping[str, str]) -> str:
    return _long_secret(env, "COUNCIL_HEALTH_TOKEN")


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = _text(env, name)
    return Path(raw) if raw else None


@dataclass(frozen=True)
class Settings:
    """Everything this process takes from its environment (``docs/configuration.md``).

    Attributes:
        environ: A read-only copy of the whole environment, for the ``${VAR}`` references of
            ``credentials.yml`` and ``endpoints.yml`` (channel secrets, service URLs).
        redis_url: ``REDIS_URL`` (empty: unset; :func:`bot.redis_conn.redis_url` refuses it,
            ``bot.run`` starts the embedded server).
        namespace: ``COUNCIL_NAMESPACE``: prefix of every Redis key (default ``cr``).
        profile_path: ``COUNCIL_PROFILE``: the council profile (default the demo's).
        public_url: ``COUNCIL_PUBLIC_URL``: the console's public base URL (empty: unset).
        today: ``COUNCIL_TODAY``: a fixed "today" for bin lookups (None: the real date).
        missed_bin_retention_days: ``COUNCIL_MISSED_BIN_RETENTION_DAYS`` (90).
        audit_retention_days: ``COUNCIL_AUDIT_RETENTION_DAYS`` (365).
        handoff_retention_days: ``COUNCIL_HANDOFF_RETENTION_DAYS`` (365, closed cases).
        failed_message_retention_days: ``COUNCIL_FAILED_MESSAGE_RETENTION_DAYS`` (30).
        secret_key: ``COUNCIL_SECRET_KEY`` (empty: unset; the console refuses to start).
        cookie_secure: ``COUNCIL_COOKIE_SECURE`` (``0``: cookies also over plain HTTP).
        trusted_proxies: ``COUNCIL_TRUSTED_PROXIES``: addresses and CIDR ranges.
        web_host: ``COUNCIL_WEB_HOST``: where the console listens (127.0.0.1).
        web_port: ``COUNCIL_WEB_PORT``: the console's port (8080).
        test_conversations: ``COUNCIL_TEST_CONVERSATIONS``: the editor's regression-gate
            conversations (None: those shipped with the content).
        rasa_url: ``RASA_URL``: where the console and tools reach the Rasa server.
        rasa_auth_token: ``RASA_AUTH_TOKEN``: the Rasa HTTP API's token (empty: none).
        health_token: ``COUNCIL_HEALTH_TOKEN``: bearer token of the edge's
            ``/health/channels`` (empty: that route is 404; at least 32 characters).
        internal_host: ``COUNCIL_INTERNAL_HOST``: the loopback or private address the Rasa
            server and action server listen on.
        sla_file: ``COUNCIL_SLA_FILE`` (deprecated): JSON targets replacing the profile's.
        sla_webhook: ``COUNCIL_SLA_WEBHOOK``: POSTed on a service-level breach.
        safeguarding_webhook: ``COUNCIL_SAFEGUARDING_WEBHOOK``: POSTed on a safeguarding
            handoff out of hours.
        webchat_secret: ``COUNCIL_WEBCHAT_SECRET``: signs the web chat's conversation tokens
            (empty: the edge serves no web chat; at least 32 characters).
        credentials_path: ``COUNCIL_CREDENTIALS``: the channels' ``credentials.yml``, for the
            action server to fetch residents' photos (None: photos cannot be fetched).
        media_key: ``COUNCIL_MEDIA_KEY``: signs the expiring photo addresses (at least 32
            characters; empty: photos are not accepted).
        media_url: ``COUNCIL_MEDIA_URL``: the edge's public base URL the photo addresses
            start with (empty: photos are not accepted).
        reports_webhook_secret: ``COUNCIL_REPORTS_WEBHOOK_SECRET``: authenticates back offices
            pushing report status changes to the edge (at least 32 characters; empty: the
            route is not served).
    """

    # secrets and the environment stay out of repr(): a logged or printed Settings leaks nothing
    environ: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    redis_url: str = field(default="", repr=False)
    namespace: str = "cr"
    profile_path: Path = DEFAULT_PROFILE
    public_url: str = ""
    today: date | None = None
    missed_bin_retention_days: int = 90
    audit_retention_days: int = 365
    handoff_retention_days: int = 365
    failed_message_retention_days: int = 30
    secret_key: str = field(default="", repr=False)
    cookie_secure: bool = True
    trusted_proxies: tuple[str, ...] = ()
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    test_conversations: Path | None = None
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_auth_token: str = field(default="", repr=False)
    health_token: str = field(default="", repr=False)
    internal_host: str = "127.0.0.1"
    sla_file: Path | None = None
    sla_webhook: str = ""
    safeguarding_webhook: str = ""
    webchat_secret: str = field(default="", repr=False)
    credentials_path: Path | None = None
    media_key: str = field(default="", repr=False)
    reports_webhook_secret: str = field(default="", repr=False)
    media_url: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read and check every setting from ``environ``.

        Raises:
            ConfigError: A variable has a bad value (the error names it).
        """
        env = MappingProxyType(dict(environ))
        return cls(
            environ=env,
            redis_url=_redis_url(env),
            namespace=_text(env, "COUNCIL_NAMESPACE", "cr"),
            profile_path=_path(env, "COUNCIL_PROFILE") or DEFAULT_PROFILE,
            public_url=_url(env, "COUNCIL_PUBLIC_URL"),
            today=_today(env),
            missed_bin_retention_days=_days(env, "COUNCIL_MISSED_BIN_RETENTION_DAYS", 90),
            audit_retention_days=_days(env, "COUNCIL_AUDIT_RETENTION_DAYS", 365),
            handoff_retention_days=_days(env, "COUNCIL_HANDOFF_RETENTION_DAYS", 365),
            failed_message_retention_days=_days(env, "COUNCIL_FAILED_MESSAGE_RETENTION_DAYS", 30),
            secret_key=env.get("COUNCIL_SECRET_KEY", ""),
            cookie_secure=_flag(env, "COUNCIL_COOKIE_SECURE", True),
            trusted_proxies=tuple(
                str(network)
                for network in parse_trusted_proxies(_text(env, "COUNCIL_TRUSTED_PROXIES"))
            ),
            web_host=_text(env, "COUNCIL_WEB_HOST", "127.0.0.1"),
            web_port=_port(env, "COUNCIL_WEB_PORT", 8080),
            test_conversations=_path(env, "COUNCIL_TEST_CONVERSATIONS"),
            rasa_url=_url(env, "RASA_URL", "http://127.0.0.1:5005").rstrip("/"),
            rasa_auth_token=env.get("RASA_AUTH_TOKEN", ""),
            health_token=_health_token(env),
            internal_host=_internal_host(env),
            sla_file=_path(env, "COUNCIL_SLA_FILE"),
            sla_webhook=_url(env, "COUNCIL_SLA_WEBHOOK"),
            safeguarding_webhook=_url(env, "COUNCIL_SAFEGUARDING_WEBHOOK"),
            webchat_secret=_long_secret(env, "COUNCIL_WEBCHAT_SECRET"),
            credentials_path=_path(env, "COUNCIL_CREDENTIALS"),
            media_key=_long_secret(env, "COUNCIL_MEDIA_KEY"),
            reports_webhook_secret=_long_secret(env, "COUNCIL_REPORTS_WEBHOOK_SECRET"),
            media_url=_url(env, "COUNCIL_MEDIA_URL").rstrip("/"),
        )

    def secrets(self) -> list[str]:
        """The secret values among these settings (for log redaction; empty ones left out)."""
        found = [self.rasa_auth_token, self.secret_key, self.health_token, self.webchat_secret]
        found.append(self.media_key)
        found.append(self.reports_webhook_secret)
        password = urlsplit(self.redis_url).password if self.redis_url else None
        return [value for value in (*found, password or "") if value]


_lock = threading.Lock()
_current: Settings | None = None


def current() -> Settings:
    """This process' settings, read from ``os.environ`` on first use and kept.

    Raises:
        ConfigError: A variable has a bad value.
    """
    global _current  # one reading of the environment per process
    with _lock:
        if _current is None:
            _current = Settings.from_env(os.environ)
        return _current


def use(settings: Settings | None) -> Settings | None:
    """Make ``settings`` this process' settings (None: read again on next use); return the old.

    For tests, and for a process that built its settings itself at start.
    """
    global _current
    with _lock:
        previous, _current = _current, settings
        return previous
