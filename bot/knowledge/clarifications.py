"""How often the assistant asked "Did you mean...?": daily counters for the supervisors' report.

The knowledge-base action counts each clarifying question into
``{ns}:stats:clarifications:{YYYY-MM-DD}`` (no resident data: a number per day, kept as long as
reports look back); ``bot.web.reports`` adds up the days of a period.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import redis.asyncio

from bot.handoff.questions import RETENTION_SECONDS
from bot.keys import key

__all__ = ["count", "total"]


def _day_key(namespace: str, day: date) -> str:
    return key(namespace, "stats", "clarifications", day.isoformat())


async def count(client: redis.asyncio.Redis, namespace: str, day: date) -> None:
    """Count one clarifying question on ``day``."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.incr(_day_key(namespace, day))
        pipe.expire(_day_key(namespace, day), RETENTION_SECONDS)
        await pipe.execute()


async def total(client: redis.asyncio.Redis, namespace: str, start: datetime, end: datetime) -> int:
    """Clarifying questions asked on the days of ``[start, end)``."""
    day, keys = start.date(), []
    while day <= (end - timedelta(microseconds=1)).date():
        keys.append(_day_key(namespace, day))
        day += timedelta(days=1)
    counts = await client.mget(keys) if keys else []
    return sum(int(c) for c in counts if c)
