"""What every store of a conversation's data shares: Redis, its namespace, how long it is kept.

A conversation's events (:class:`~bot.webchat.events.EventLog`) and uploads
(:class:`~bot.webchat.uploads.UploadStore`) live and expire together, for the profile's
``retention.conversations``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis.asyncio

__all__ = ["Retained"]


class Retained:
    """Data kept with web chat conversations.

    Args:
        client: Asyncio Redis client (decoded strings).
        namespace: Key namespace.
        keep_days: Days the data lives after the conversation's last event (the profile's
            ``retention.conversations``).
        clock: Unix seconds.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        namespace: str = "cr",
        *,
        keep_days: int = 90,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = client
        self.namespace = namespace
        self.keep_seconds = keep_days * 24 * 3600
        self.clock = clock
