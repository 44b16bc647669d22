"""Today's date in the borough, overridable for deterministic end-to-end runs."""

from __future__ import annotations

import os
from datetime import date, datetime

from bot.errors import ConfigError
from bot.profile import current as council_profile

__all__ = ["today"]


def today() -> date:
    """``COUNCIL_TODAY`` (``YYYY-MM-DD``) when set, else today's date in the council's zone.

    Raises:
        ConfigError: ``COUNCIL_TODAY`` is set but is not a date.
    """
    fixed = os.environ.get("COUNCIL_TODAY", "").strip()
    if not fixed:
        return datetime.now(council_profile().hours.zone).date()
    try:
        return date.fromisoformat(fixed)
    except ValueError:
        raise ConfigError(
            "environment", "COUNCIL_TODAY", f"not a YYYY-MM-DD date: {fixed!r}"
        ) from None
