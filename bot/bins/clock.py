"""Today's date in the borough, overridable for deterministic end-to-end runs."""

from __future__ import annotations

import os
from datetime import date, datetime
from zoneinfo import ZoneInfo

from bot.errors import ConfigError

__all__ = ["BOROUGH_TZ", "today"]

BOROUGH_TZ = ZoneInfo("Europe/London")


def today() -> date:
    """``COUNCIL_TODAY`` (``YYYY-MM-DD``) when set, else today's date in the UK.

    Raises:
        ConfigError: ``COUNCIL_TODAY`` is set but is not a date.
    """
    fixed = os.environ.get("COUNCIL_TODAY", "").strip()
    if not fixed:
        return datetime.now(BOROUGH_TZ).date()
    try:
        return date.fromisoformat(fixed)
    except ValueError:
        raise ConfigError(
            "environment", "COUNCIL_TODAY", f"not a YYYY-MM-DD date: {fixed!r}"
        ) from None
