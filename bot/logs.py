"""Keep secrets and residents' phone numbers out of every log line.

:func:`install` is called once at process start (the edge, the Rasa server through
:mod:`bot.channels.rasa`, the console). It replaces the logging module's record factory, so
every record any library creates (httpx prints ``.../bot<token>/sendMessage``, the twilio
client prints request URLs and parameters with numbers) is redacted once, before any handler
or formatter sees it: handlers that Rasa or uvicorn add later are covered too. Redacted:

* the values of the secrets registered with :func:`protect` (channel secrets from
  ``credentials.yml``, the Rasa token, the console's key, a Redis password);
* anything shaped like a secret: Telegram bot tokens (``bot123456:AA...``), ``token=``,
  ``verify_token=``, ``auth_token=`` and ``password=`` values, ``Authorization`` values;
* phone numbers in international form (``+447700900123``, URL-encoded ``%2B447700900123``).

:class:`Tally` keeps a flood of alike lines (the edge's refusals under a barrage of forged
requests) to one line per reason per interval, with the count: the first is logged at once,
the repeats as ``<line> (N more in the last S s)`` when the interval ends.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, urlsplit

from bot import settings
from bot.errors import ConfigError

__all__ = ["REDACTED", "Tally", "install", "protect", "redact"]

REDACTED = "[redacted]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Telegram: https://api.telegram.org/bot<id>:<secret>/sendMessage
    (re.compile(r"bot\d{3,}:[A-Za-z0-9_-]{10,}"), f"bot{REDACTED}"),
    (re.compile(r"bot\d{3,}(?:%3A|:)[A-Za-z0-9_-]+", re.IGNORECASE), f"bot{REDACTED}"),
    # query strings and key=value pairs that carry secrets
    (
        re.compile(
            r"((?:^|[?&\s,;'\"{])(?:[A-Za-z_.]*token|password|secret|api_key|auth)"
            r"['\"]?\s*[=:]\s*['\"]?)[^&\s'\",;}]+",
            re.IGNORECASE,
        ),
        rf"\1{REDACTED}",
    ),
    (
        re.compile(r"(Authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\n]+", re.IGNORECASE),
        rf"\1{REDACTED}",
    ),
    # phone numbers in international form, plain or URL-encoded
    (re.compile(r"(?:\+|%2B)\d[\d ()-]{5,18}\d", re.IGNORECASE), "+[phone]"),
)
_MIN_SECRET = 6  # shorter values would redact ordinary words

_lock = threading.Lock()
_secrets: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None
_installed = False


def protect(values: Iterable[str]) -> None:
    """Register secret values: they never appear in a log record from now on."""
    global _secret_pattern
    with _lock:
        for value in values:
            if value and len(value) >= _MIN_SECRET:
                _secrets.add(value)
                encoded = quote(value, safe="")
                if encoded != value:
                    _secrets.add(encoded)
        ordered = sorted(_secrets, key=len, reverse=True)  # longest first: no partial leaks
        _secret_pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None


def redact(text: str) -> str:
    """``text`` with every registered secret, secret-shaped value and phone number removed."""
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    for found, replacement in _PATTERNS:
        text = found.sub(replacement, text)
    return text


def _environment_secrets() -> list[str]:
    try:
        current = settings.current()
    except ConfigError:  # the entry point reports it and stops; nothing to protect yet
        return []
    found = current.secrets()
    password = urlsplit(current.environ.get("TEST_REDIS_URL", "")).password
    if password:
        found.append(password)
    return found


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string must still be logged, redacted
        message = f"{record.msg!r} {record.args!r}"
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, ()
    if record.exc_info and record.exc_info[0] is not None:
        # formatted now, redacted, and cached where every Formatter looks first
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        record.exc_info = None
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def install() -> None:
    """Redact every log record of this process (idempotent; call at start-up)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record)
        return record

    logging.setLogRecordFactory(factory)
    protect(_environment_secrets())


class Tally:
    """Log alike lines once per interval with their count, not once each.

    The first line of a kind (a logger's format and arguments) is logged at once; repeats
    within ``every`` seconds are counted and logged as one line when the interval ends (on a
    timer of the running event loop, or at the next line of that kind without one). No count
    is ever lost: :meth:`flush` logs what is still counted (at shutdown).

    Args:
        logger: Where the lines go.
        every: Seconds of one interval.
        max_kinds: Kinds counted at once; beyond it lines are logged one by one.
        clock: Monotonic seconds (tests pass a fake).
    """

    def __init__(
        self,
        logger: logging.Logger,
        every: float = 10.0,
        *,
        max_kinds: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.every = every
        self.max_kinds = max_kinds
        self.clock = clock
        self._kinds: dict[tuple[int, str, tuple[object, ...]], list[float]] = {}

    def log(self, level: int, msg: str, *args: object) -> None:
        """Log ``msg % args`` at ``level`` now, or count it if one like it was logged lately."""
        if not self.logger.isEnabledFor(level):
            return
        kind = (level, msg, args)
        now = self.clock()
        counted = self._kinds.get(kind)
        if counted is not None and now < counted[0]:
            if counted[1] == 0:
                self._flush_later(kind)
            counted[1] += 1
            return
        if counted is not None:
            self._report(kind)
        if len(self._kinds) < self.max_kinds:
            self._kinds[kind] = [now + self.every, 0]
        self.logger.log(level, msg, *args)

    def flush(self) -> None:
        """Log every count not yet logged."""
        for kind in list(self._kinds):
            self._report(kind)

    def _report(self, kind: tuple[int, str, tuple[object, ...]]) -> None:
        counted = self._kinds.pop(kind, None)
        if counted and counted[1]:
            level, msg, args = kind
            self.logger.log(
                level, f"{msg} (%d more in the last %g s)", *args, counted[1], self.every
            )

    def _flush_later(self, kind: tuple[int, str, tuple[object, ...]]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: reported with the next line of its kind, or flush()
            return
        loop.call_at(
            loop.time() + max(self._kinds[kind][0] - self.clock(), 0.0), self._report, kind
        )
