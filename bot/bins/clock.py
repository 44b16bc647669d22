"""Today's date in the borough, overridable for deterministic end-to-end runs."""

from __future__ import annotations

from datetime import date, datetime

from bot import settings
from bot.profile import current as council_profile

__all__ = ["today"]


def today() -> date:
    """``COUNCIL_TODAY`` (``YYYY-MM-DD``) when set, else today's date in the council's zone.

    Raises:
        ConfigError: ``COUNCIL_TODAY`` is set but is not a date.
    """
    fixed = settings.current().today
    if fixed is None:
        return datetime.now(council_profile().hours.zone).date()
    return fixed
