"""The scheduled sweep: once a day, one replica at a time, logged, and it survives a Redis outage.

Two consoles (replicas) share one Redis and a fake clock: the first to check sweeps, the other
finds it done; a day later the next check sweeps again. A replica that finds another holding
the lock does nothing and leaves the lock alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio

from bot.residents.rights import Layout, Retention
from bot.residents.schedule import SweepSchedule
from residents.test_rights import cleanup, layout

__all__ = ["cleanup", "layout"]

T0 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


async def _old_failed_send(client: redis.asyncio.Redis, layout: Layout, at: datetime) -> None:
    entry_id = f"{int((at - timedelta(days=60)).timestamp() * 1000)}-0"
    await client.xadd(layout.key("outbox", "failed"), {"conversation_id": "sms:x:y"}, id=entry_id)


def _replicas(
    client: redis.asyncio.Redis, layout: Layout, clock: Callable[[], datetime]
) -> tuple[SweepSchedule, SweepSchedule]:
    return (
        SweepSchedule(client, layout, Retention(failed_days=30), clock=clock),
        SweepSchedule(client, layout, Retention(failed_days=30), clock=clock),
    )


async def test_one_sweep_a_day_whichever_replica_checks(
    async_redis: redis.asyncio.Redis, layout: Layout, cleanup: None
) -> None:
    clock = Clock()
    first, second = _replicas(async_redis, layout, clock)
    await _old_failed_send(async_redis, layout, clock.now)

    assert (await first.run_if_due() or {}).get("failed_messages") == 1
    assert await second.run_if_due() is None  # done today
    assert await async_redis.get(first.last_key) == T0.isoformat()

    clock.now = T0 + timedelta(hours=23)
    await _old_failed_send(async_redis, layout, clock.now)
    assert await first.run_if_due() is None
    assert await second.run_if_due() is None
    clock.now = T0 + timedelta(days=1)
    assert (await second.run_if_due() or {}).get("failed_messages") == 1
    assert await first.run_if_due() is None
    assert not await async_redis.exists(first.lock_key)  # released after each check


async def test_a_replica_leaves_a_running_sweep_alone(
    async_redis: redis.asyncio.Redis, layout: Layout, cleanup: None
) -> None:
    clock = Clock()
    first, second = _replicas(async_redis, layout, clock)
    await async_redis.set(first.lock_key, "held-by-another-replica", ex=60)
    await _old_failed_send(async_redis, layout, clock.now)

    assert await second.run_if_due() is None
    assert await async_redis.get(first.lock_key) == "held-by-another-replica"
    assert await async_redis.xlen(layout.key("outbox", "failed")) == 1
    await async_redis.delete(first.lock_key)  # the other replica finished (or its lease ran out)
    assert (await second.run_if_due() or {}).get("failed_messages") == 1


async def test_running_in_the_background_sweeps_then_checks_again_later(
    async_redis: redis.asyncio.Redis,
    layout: Layout,
    cleanup: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    waits: list[float] = []
    checked = asyncio.Event()

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        checked.set()
        await asyncio.Event().wait()  # until cancelled

    await _old_failed_send(async_redis, layout, T0)
    schedule = SweepSchedule(
        async_redis, layout, Retention(failed_days=30), clock=Clock(), sleep=sleep
    )
    caplog.set_level(logging.INFO, logger="bot.residents.schedule")
    async with schedule.running():
        await asyncio.wait_for(checked.wait(), timeout=10)
    assert waits == [3600.0]
    assert "retention sweep: removed 0 handoff cases, 1 failed messages" in caplog.text
    assert await async_redis.get(schedule.last_key) == T0.isoformat()


async def test_redis_away_is_logged_and_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            raise asyncio.CancelledError

    unreachable = redis.asyncio.Redis.from_url("redis://127.0.0.1:1/0", decode_responses=True)
    schedule = SweepSchedule(unreachable, Layout("{test:none}"), Retention(), sleep=sleep)
    with pytest.raises(asyncio.CancelledError):
        await schedule.run_forever()
    await unreachable.close()
    assert waits == [3600.0, 3600.0]
    assert caplog.text.count("trying again in 3600 s") == 2
    assert "Error 111 connecting" in caplog.text
