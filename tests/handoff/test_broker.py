from __future__ import annotations

from datetime import UTC, datetime

import redis.asyncio

from bot.handoff.broker import HandoffEventBroker
from bot.handoff.queue import HandoffQueue


def _event(sender: str, at: datetime, text: str = "hello") -> dict[str, object]:
    return {"event": "user", "sender_id": sender, "timestamp": at.timestamp(), "text": text}


async def test_each_resident_counts_once_a_day(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    broker = HandoffEventBroker(HandoffQueue(async_redis, namespace))
    monday = datetime(2027, 3, 1, 9, tzinfo=UTC)
    tuesday = datetime(2027, 3, 2, 9, tzinfo=UTC)
    for event in [
        _event("telegram:councilbot:1", monday),
        _event("telegram:councilbot:1", monday.replace(hour=15)),
        _event("whatsapp:+441234:+447700900123", monday),
        _event("telegram:councilbot:1", tuesday),
    ]:
        await broker.handle_user_message(event)
    counts = await async_redis.mget(
        f"{namespace}:stats:conversations:2027-03-01", f"{namespace}:stats:conversations:2027-03-02"
    )
    assert counts == ["2", "1"]
    # The per-resident markers expire; the anonymous counts are kept for reporting.
    marker = f"{namespace}:stats:seen:2027-03-01:telegram:councilbot:1"
    assert 0 < await async_redis.ttl(marker) <= 2 * 24 * 3600
    assert await async_redis.ttl(f"{namespace}:stats:conversations:2027-03-01") > 365 * 24 * 3600
