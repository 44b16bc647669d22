"""The retention sweep: closed handoff cases and failed messages go once their time is up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio

from bot.errors import ConfigError
from bot.handoff.queue import HandoffQueue
from bot.handoff.record import HandoffRecord
from bot.residents.rights import Layout, Retention, sweep

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def _record(sender: str, opened: datetime) -> HandoffRecord:
    return HandoffRecord(
        conversation_id=f"sms:+441632960000:{sender}",
        channel="sms",
        account="+441632960000",
        sender=sender,
        reason="complaint",
        topic="council_tax",
        priority="P2",
        team="revenues",
        created_at=opened.isoformat(),
        transcript=[
            {"role": "resident", "text": f"complaint from {sender}", "at": opened.isoformat()}
        ],
    )


async def test_sweep_removes_only_what_is_past_its_period(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    now = T0
    queue = HandoffQueue(async_redis, namespace, clock=lambda: now)
    old_closed = await queue.open(_record("+447700900001", T0))
    old_open = await queue.open(_record("+447700900002", T0))
    recent_closed = await queue.open(_record("+447700900003", T0))
    assert await queue.resolve(old_closed, "amy")
    now = T0 + timedelta(days=20)
    assert await queue.resolve(recent_closed, "amy")
    failed = f"{namespace}:outbox:failed"
    old_id = f"{int(T0.timestamp() * 1000)}-0"
    await async_redis.xadd(failed, {"conversation_id": "sms:x:+447700900001"}, id=old_id)
    recent_id = f"{int((T0 + timedelta(days=20)).timestamp() * 1000)}-0"
    await async_redis.xadd(failed, {"conversation_id": "sms:x:+447700900003"}, id=recent_id)

    retention = Retention(handoff_days=15, failed_days=10)
    removed = await sweep(async_redis, Layout(namespace), retention, T0 + timedelta(days=25))

    assert removed == {"handoff_cases": 1, "failed_messages": 1}
    assert await queue.get(old_closed) is None
    assert await queue.transcript(old_closed) == []
    assert old_closed not in await async_redis.zrange(f"{namespace}:handoff:cases", 0, -1)
    assert await queue.get(old_open) is not None  # still open: never swept
    assert await queue.get(recent_closed) is not None  # closed 5 days ago
    assert [e for e, _ in await async_redis.xrange(failed)] == [recent_id]
    again = await sweep(async_redis, Layout(namespace), retention, T0 + timedelta(days=25))
    assert again == {"handoff_cases": 0, "failed_messages": 0}


def test_retention_periods_from_the_environment() -> None:
    assert Retention.from_env({}) == Retention(365, 30)
    assert Retention.from_env({"COUNCIL_HANDOFF_RETENTION_DAYS": "730"}).handoff_days == 730
    with pytest.raises(ConfigError) as info:
        Retention.from_env({"COUNCIL_FAILED_MESSAGE_RETENTION_DAYS": "0"})
    assert info.value.key == "COUNCIL_FAILED_MESSAGE_RETENTION_DAYS"
