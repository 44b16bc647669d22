"""A location the resident shares from the widget: checked, trimmed, and made a pin.

The widget sends ``{"location": {"latitude": <number>, "longitude": <number>}}`` to
``POST /webchat/messages`` when the resident presses "Share my location" (the browser's
geolocation). :func:`shared_location` checks it and trims it to :data:`DECIMALS` decimal places
(about a metre: a phone's position is no better, and the back office needs no more), and the
message reaches Rasa as :class:`~bot.channels.base.Location`, the same pin the messaging apps
deliver (``metadata["location"]``), which the report form places with the gazetteer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from bot.channels.base import Location
from bot.errors import CouncilError

__all__ = ["DECIMALS", "LOCATION_PAYLOAD", "PinError", "shared_location"]

LOCATION_PAYLOAD = "/webchat_location"
"""A reply button with this payload asks for the resident's location: the web chat shows its
"Share my location" control instead (other channels' residents send a pin from their app)."""
DECIMALS = 5
"""Decimal places kept: 0.00001 degree is 1.1 m of latitude."""
_LIMITS = {"latitude": 90.0, "longitude": 180.0}


class PinError(CouncilError):
    """A shared location was refused.

    Attributes:
        reason: Why, in words for the widget's developers.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def shared_location(value: Any) -> Location:
    """The pin of a message's ``location`` object.

    Raises:
        PinError: Not an object of two JSON numbers (strings and booleans are refused), not
            finite, or beyond the range of a latitude (90) or longitude (180).
    """
    if not isinstance(value, Mapping) or set(value) != set(_LIMITS):
        raise PinError("location must be an object with latitude and longitude only")
    degrees = {}
    for name, limit in _LIMITS.items():
        number = value[name]
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise PinError(f"{name} must be a number")
        if not math.isfinite(number) or abs(number) > limit:
            raise PinError(f"{name} must be between -{limit:g} and {limit:g}")
        degrees[name] = round(float(number), DECIMALS) + 0.0  # + 0.0: no "-0.0"
    return Location(degrees["latitude"], degrees["longitude"])
