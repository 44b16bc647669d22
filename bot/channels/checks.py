"""Type and range checks for the values adapters read from a verified payload.

A signed payload can still be malformed (a provider bug, a replayed test event, a hostile
app with our secret). Every value an adapter uses passes one of these checks at parse time,
so nothing malformed reaches the inbox or a worker: a ``text`` that is a list, a timestamp
of 1e308, a lone surrogate, an empty sender. Each check raises :class:`~bot.errors.PayloadError`
naming the field, which the adapter turns into a rejected event (the webhook still answers
200 and dead-letters it; see :mod:`bot.channels.webhook`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any

from bot.errors import PayloadError

__all__ = [
    "EARLIEST",
    "MAX_ID",
    "clean",
    "coordinate",
    "identifier",
    "items",
    "load_json",
    "mapping",
    "optional_text",
    "text",
    "timestamp",
]

EARLIEST = 946_684_800.0
"""2000-01-01T00:00:00Z: no provider's message is older than this."""
_FUTURE_SLACK = 24 * 3600.0
MAX_ID = 256
"""Longest id accepted (providers' ids are under 100 characters)."""


def load_json(channel: str, raw_body: bytes) -> Any:
    """Decode a JSON body; nesting too deep for the decoder is refused, not a crash.

    Raises:
        PayloadError: Not UTF-8 JSON, or nested deeper than the decoder allows.
    """
    try:
        return json.loads(raw_body)
    except RecursionError as exc:
        raise PayloadError(channel, "JSON nested too deeply") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(channel, "body is not JSON") from exc


def clean(value: str) -> str:
    """Replace lone surrogates (valid JSON, not encodable as UTF-8) with U+FFFD."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def mapping(channel: str, value: Any, where: str) -> Mapping[str, Any]:
    """A JSON object.

    Raises:
        PayloadError: ``value`` is not an object.
    """
    if not isinstance(value, dict):
        raise PayloadError(channel, f"{where} is not an object")
    return value


def items(channel: str, value: Any, where: str) -> list[Any]:
    """A JSON array (absent or null: empty).

    Raises:
        PayloadError: ``value`` is neither null nor an array.
    """
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(channel, f"{where} is not a list")
    return value


def text(channel: str, value: Any, where: str) -> str:
    """A required string (lone surrogates replaced).

    Raises:
        PayloadError: Absent, or not a string (a list, number or object).
    """
    if not isinstance(value, str):
        raise PayloadError(channel, f"{where} is not a string")
    return clean(value)


def optional_text(channel: str, value: Any, where: str) -> str:
    """A string that may be absent or null (then '').

    Raises:
        PayloadError: Present but not a string.
    """
    return "" if value is None else text(channel, value, where)


def identifier(channel: str, value: Any, where: str) -> str:
    """A non-empty id given as a string or an integer.

    Raises:
        PayloadError: Absent, empty, a float or bool, too long, or with control characters.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PayloadError(channel, f"{where} is not an id")
    found = str(value).strip()
    if not found or len(found) > MAX_ID or not found.isprintable():
        raise PayloadError(channel, f"{where} is empty, too long or not printable")
    return found


def timestamp(
    channel: str, value: Any, where: str, *, per_second: int = 1, now: float | None = None
) -> float:
    """A provider time as Unix seconds, between 2000 and a day from now.

    Args:
        channel: For the error.
        value: Number or digit string (X sends milliseconds as a string).
        where: The field, for the error.
        per_second: 1000 when the provider counts milliseconds.
        now: The clock (default: the real one).

    Raises:
        PayloadError: Null, not a number, not finite or out of range.
    """
    if isinstance(value, str) and value.strip().isdigit() and len(value) < 20:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(channel, f"{where} is not a number")
    try:
        seconds = float(value) / per_second
    except OverflowError as exc:
        raise PayloadError(channel, f"{where} is out of range") from exc
    latest = (time.time() if now is None else now) + _FUTURE_SLACK
    if not math.isfinite(seconds) or not EARLIEST <= seconds <= latest:
        raise PayloadError(channel, f"{where} is out of range")
    return seconds


def coordinate(channel: str, value: Any, where: str, limit: float) -> float:
    """A latitude (``limit`` 90) or longitude (180) in degrees, as a number or numeric string.

    Raises:
        PayloadError: Not a number, not finite, or beyond ``limit``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PayloadError(channel, f"{where} is not a number")
    try:
        degrees = float(value)
    except (OverflowError, ValueError) as exc:
        raise PayloadError(channel, f"{where} is not a number") from exc
    if not math.isfinite(degrees) or abs(degrees) > limit:
        raise PayloadError(channel, f"{where} is out of range")
    return degrees
