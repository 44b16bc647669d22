"""The profile's ``webchat`` section: how the chat looks on the council's pages, and its limits.

Read by :meth:`bot.profile.CouncilProfile.load` (``profile.webchat``; None when the section is
absent: the edge then serves no web chat). Every mistake is a
:class:`~bot.errors.ConfigError` naming the file and the dotted key. Keys: ``docs/profile.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

from bot.errors import ConfigError

__all__ = [
    "CONTINUE_CHANNELS",
    "UPLOAD_TYPES",
    "WebChatConfig",
    "WebChatLimits",
    "contrast_ratio",
    "read_section",
]

UPLOAD_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")
"""The image types the widget may upload (and the only ones the server can check)."""
CONTINUE_CHANNELS = ("sms", "whatsapp")
"""Where a resident may continue a web chat (Twilio)."""
_COUNCIL_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,39}\Z")
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}\Z")
_UK_MOBILE = re.compile(r"\+44[1-9]\d{8,9}\Z")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_MIN_CONTRAST = 4.5  # WCAG 2.2 AA, normal text
_LIMIT_KEYS = {
    "max_text_chars": 1000,
    "max_upload_bytes": 5 * 1024 * 1024,
    "messages_per_minute": 20,
    "address_requests_per_minute": 300,
    "sessions_per_hour": 60,
}


@dataclass(frozen=True)
class WebChatLimits:
    """Size and rate limits of the web chat.

    Attributes:
        max_text_chars: Longest message a resident may send.
        max_upload_bytes: Largest upload.
        upload_types: Accepted upload types (images only).
        messages_per_minute: Messages per conversation token.
        address_requests_per_minute: Requests of any kind per client address (a shared
            address, an office or a school, holds many residents: keep it generous).
        sessions_per_hour: New conversations per client address.
    """

    max_text_chars: int = 1000
    max_upload_bytes: int = 5 * 1024 * 1024
    upload_types: tuple[str, ...] = UPLOAD_TYPES
    messages_per_minute: int = 20
    address_requests_per_minute: int = 300
    sessions_per_hour: int = 60


@dataclass(frozen=True)
class WebChatConfig:
    """The web chat of one council.

    Attributes:
        council_id: What the embed's ``data-council`` names (``riverton``); part of every token.
        name: The chat's title ("Riverton Council").
        greeting: The first message the widget shows.
        primary: Launcher and header colour (``#rrggbb``).
        on_primary: Text colour on ``primary`` (contrast at least 4.5:1, checked).
        pages: Path globs of the pages it appears on (``/bins*``); empty: every page.
        allowed_origins: The council's sites (``https://www.riverton.gov.uk``) allowed to call.
        continue_channels: Where residents may continue (``sms``, ``whatsapp``).
        continue_from: The council's Twilio number codes and later replies are sent from ('':
            continuing is not offered).
        code_message: The text carrying the 6-digit code (``{code}`` and ``{name}`` filled).
        limits: Size and rate limits.
    """

    council_id: str
    name: str
    greeting: str
    primary: str = "#1d4f91"
    on_primary: str = "#ffffff"
    pages: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    continue_channels: tuple[str, ...] = ()
    continue_from: str = ""
    code_message: str = "Your {name} web chat code is {code}. It ends in 10 minutes."
    limits: WebChatLimits = field(default_factory=WebChatLimits)

    def shows_on(self, path: str) -> bool:
        """True when the widget appears on the page at ``path``."""
        return not self.pages or any(fnmatchcase(path, pattern) for pattern in self.pages)

    def allows(self, origin: str) -> bool:
        """True when ``origin`` (the request's ``Origin`` header) is one of the council's sites."""
        return bool(origin) and origin.rstrip("/") in self.allowed_origins


def _luminance(colour: str) -> float:
    def channel(value: int) -> float:
        part = value / 255
        return part / 12.92 if part <= 0.03928 else ((part + 0.055) / 1.055) ** 2.4

    red, green, blue = (int(colour[index : index + 2], 16) for index in (1, 3, 5))
    return 0.2126 * channel(red) + 0.7152 * channel(green) + 0.0722 * channel(blue)


def contrast_ratio(first: str, second: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    light, dark = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.path, f"webchat.{key}", reason)

    def text(self, data: Mapping[str, Any], key: str, default: str | None = None) -> str:
        value = data.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "must be non-empty text")
        return value.strip()

    def strings(self, data: Mapping[str, Any], key: str) -> tuple[str, ...]:
        value = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, "must be a list of text")
        return tuple(v.strip() for v in value)

    def origin(self, value: str, index: int) -> str:
        parts = urlsplit(value)
        loopback = parts.scheme == "http" and parts.hostname in _LOOPBACK
        if (
            (parts.scheme != "https" and not loopback)
            or not parts.netloc
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
        ):
            raise self.fail(
                f"allowed_origins[{index}]",
                f"must be an origin such as https://www.example.gov.uk, not {value!r}",
            )
        return value.rstrip("/")

    def limits(self, data: Any) -> WebChatLimits:
        if data is None:
            return WebChatLimits()
        if not isinstance(data, Mapping):
            raise self.fail("limits", "must be a mapping")
        unknown = sorted(set(data) - {*_LIMIT_KEYS, "upload_types"})
        if unknown:
            raise self.fail(f"limits.{unknown[0]}", "unknown key")
        numbers = {}
        for name, default in _LIMIT_KEYS.items():
            value = data.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise self.fail(f"limits.{name}", f"must be a positive whole number, not {value!r}")
            numbers[name] = value
        types = self.strings(data, "upload_types") if "upload_types" in data else UPLOAD_TYPES
        for kind in types:
            if kind not in UPLOAD_TYPES:
                raise self.fail(
                    "limits.upload_types", f"{kind!r} is not one of {', '.join(UPLOAD_TYPES)}"
                )
        return WebChatLimits(upload_types=types, **numbers)

    def section(self, data: Mapping[str, Any]) -> WebChatConfig:
        allowed = (
            "council_id",
            "name",
            "greeting",
            "colours",
            "pages",
            "allowed_origins",
            "continue_channels",
            "continue_from",
            "code_message",
            "limits",
        )
        unknown = sorted(str(k) for k in set(data) - set(allowed))
        if unknown:
            raise self.fail(unknown[0], f"unknown key (expected {', '.join(allowed)})")
        council_id = self.text(data, "council_id")
        if not _COUNCIL_ID.match(council_id):
            raise self.fail("council_id", "2-40 lower-case letters, digits and '-' (riverton)")
        colours = data.get("colours") or {}
        if not isinstance(colours, Mapping) or set(colours) - {"primary", "on_primary"}:
            raise self.fail("colours", "must be a mapping with primary and on_primary")
        primary = str(colours.get("primary", "#1d4f91"))
        on_primary = str(colours.get("on_primary", "#ffffff"))
        for name, colour in (("primary", primary), ("on_primary", on_primary)):
            if not _COLOUR.match(colour):
                raise self.fail(
                    f"colours.{name}", f'must be a colour such as "#1d4f91", not {colour!r}'
                )
        if contrast_ratio(primary, on_primary) < _MIN_CONTRAST:
            raise self.fail(
                "colours",
                f"on_primary on primary has contrast {contrast_ratio(primary, on_primary):.1f}:1;"
                f" WCAG AA needs {_MIN_CONTRAST}:1",
            )
        pages = self.strings(data, "pages")
        for index, page in enumerate(pages):
            if not page.startswith("/"):
                raise self.fail(f"pages[{index}]", f"must be a path such as /bins*, not {page!r}")
        origins = tuple(
            self.origin(value, index)
            for index, value in enumerate(self.strings(data, "allowed_origins"))
        )
        channels = self.strings(data, "continue_channels")
        for channel in channels:
            if channel not in CONTINUE_CHANNELS:
                raise self.fail("continue_channels", f"{channel!r} is not one of sms, whatsapp")
        source = str(data.get("continue_from") or "").replace(" ", "")
        if channels and not _UK_MOBILE.match(source):
            raise self.fail(
                "continue_from",
                "the council's Twilio number in +44 form (needed by continue_channels)",
            )
        message = self.text(data, "code_message", WebChatConfig.code_message)
        if "{code}" not in message:
            raise self.fail("code_message", "must contain {code}")
        return WebChatConfig(
            council_id=council_id,
            name=self.text(data, "name"),
            greeting=self.text(data, "greeting"),
            primary=primary,
            on_primary=on_primary,
            pages=pages,
            allowed_origins=origins,
            continue_channels=channels,
            continue_from=source,
            code_message=message,
            limits=self.limits(data.get("limits")),
        )


def read_section(data: Any, path: str) -> WebChatConfig | None:
    """The ``webchat`` section of the profile at ``path`` (None when absent).

    Raises:
        ConfigError: A key is unknown or a value is wrong (names the file and key).
    """
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise ConfigError(path, "webchat", "must be a mapping of keys to values")
    return _Reader(path).section(data)
