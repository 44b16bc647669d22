"""Reading a stream as one consumer of a group: names, take-overs, keep-alive, lanes, retries."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time

import redis.asyncio

from bot.channels.stream import (
    Batch,
    Fields,
    GroupReader,
    Lanes,
    Retries,
    RetryPolicy,
    RetryState,
    consumer_name,
)

GROUP = "g"


def reader(client: redis.asyncio.Redis, stream: str, consumer: str, **kw: int) -> GroupReader:
    options = {"claim_idle_ms": 60_000, "block_ms": 10, "batch": 16, **kw}
    return GroupReader(client, stream, GROUP, consumer, **options)


async def entries_read_by(
    client: redis.asyncio.Redis, stream: str, consumer: str, count: int
) -> list[str]:
    answer = await client.xreadgroup(GROUP, consumer, {stream: ">"}, count=count)
    return [entry_id for entry_id, _ in answer[0][1]]


async def owners(client: redis.asyncio.Redis, stream: str) -> dict[str, str]:
    rows = await client.xpending_range(stream, GROUP, "-", "+", 100)
    return {row["message_id"]: row["consumer"] for row in rows}


def test_each_process_has_a_name_of_its_own() -> None:
    first, second = consumer_name(), consumer_name()
    assert re.fullmatch(rf"{re.escape(socket.gethostname())}-{os.getpid()}-[0-9a-f]{{6}}", first)
    assert first != second  # same host and pid (a pid reused in a container) still differ


async def test_two_consumers_taking_over_at_once_share_nothing(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    stream = f"{namespace}:s"
    first, second = reader(async_redis, stream, "b"), reader(async_redis, stream, "c")
    await first.ensure_group()
    for n in range(10):
        await async_redis.xadd(stream, {"conversation": f"c{n}"})
    await entries_read_by(async_redis, stream, "dead", 10)
    await async_redis.zadd(first.heartbeats, {"dead": time.time() - 60})

    one, two = await asyncio.gather(first.take_over_dead(), second.take_over_dead())
    taken_by_first = {entry_id for entry_id, _ in one}
    taken_by_second = {entry_id for entry_id, _ in two}
    assert not taken_by_first & taken_by_second
    assert len(taken_by_first | taken_by_second) == 10
    assert set((await owners(async_redis, stream)).values()) <= {"b", "c"}


async def test_a_live_consumer_is_left_alone(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    stream = f"{namespace}:s"
    mine = reader(async_redis, stream, "b")
    await mine.ensure_group()
    await async_redis.xadd(stream, {"conversation": "c"})
    await entries_read_by(async_redis, stream, "alive", 1)
    await async_redis.zadd(mine.heartbeats, {"alive": time.time() - 5})
    assert await mine.take_over_dead() == []
    assert set((await owners(async_redis, stream)).values()) == {"alive"}


async def test_keep_alive_never_takes_back_what_another_consumer_took_over(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    stream = f"{namespace}:s"
    slow = reader(async_redis, stream, "slow", claim_idle_ms=0)
    await slow.ensure_group()
    first = await async_redis.xadd(stream, {"conversation": "a"})
    second = await async_redis.xadd(stream, {"conversation": "b"})
    await entries_read_by(async_redis, stream, "slow", 2)
    # the slow consumer was silent too long: another took its first entry over
    await async_redis.xclaim(stream, GROUP, "other", 0, [first], justid=True)
    await slow.keep_alive([first, second])
    assert await owners(async_redis, stream) == {first: "other", second: "slow"}


async def test_held_entries_are_not_claimed_as_stale(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    stream = f"{namespace}:s"
    holder = reader(async_redis, stream, "holder", claim_idle_ms=200)
    other = reader(async_redis, stream, "other", claim_idle_ms=200)
    await holder.ensure_group()
    entry = await async_redis.xadd(stream, {"conversation": "a"})
    await entries_read_by(async_redis, stream, "holder", 1)
    await async_redis.xclaim(stream, GROUP, "holder", 0, [entry], idle=10_000, justid=True)
    await holder.keep_alive([entry])  # e.g. waiting out a Retry-After
    assert await other.backlog() == []
    assert await owners(async_redis, stream) == {entry: "holder"}


async def test_own_pending_entries_come_back_in_batches_after_a_restart(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    stream = f"{namespace}:s"
    restarted = reader(async_redis, stream, "w", batch=4)
    await restarted.ensure_group()
    ids = [await async_redis.xadd(stream, {"conversation": str(n)}) for n in range(10)]
    await entries_read_by(async_redis, stream, "w", 10)
    seen: list[str] = []
    for _ in range(4):
        seen += [entry_id for entry_id, _ in await restarted.backlog()]
    assert seen == ids


async def test_a_full_worker_stops_reading_until_there_is_room() -> None:
    go_on = asyncio.Event()
    done: list[str] = []

    async def work(entry_id: str, fields: Fields) -> None:
        await go_on.wait()
        done.append(entry_id)

    lanes = Lanes(work, "conversation", limit=2)
    deleted = await lanes.put(
        [("1-0", {"conversation": "a"}), ("2-0", {"conversation": "a"}), ("3-0", None)]
    )
    assert deleted == ["3-0"]
    assert await lanes.room(timeout=0.01) is False
    await lanes.put([("1-0", {"conversation": "a"})])  # claimed again while held: ignored
    go_on.set()
    assert await lanes.room(timeout=5) is True
    await lanes.drain()
    assert done == ["1-0", "2-0"]


def test_retry_policy() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=60, give_up_after=600, max_retry_after=300)
    assert 0.8 <= policy.delay(1) <= 1.0 and 48 <= policy.delay(10) <= 60
    assert policy.delay(5000) <= 60  # no overflow after many attempts
    assert policy.delay(1, retry_after=20) == 20
    assert policy.delay(1, retry_after=3600) == 300
    now = 1_000_000.0
    assert not policy.exhausted(RetryState(12, now - 599), now)
    assert policy.exhausted(RetryState(12, now - 600), now)
    assert policy.exhausted(RetryState(3, now, errors=3), now)
    assert RetryPolicy(max_attempts=3).exhausted(RetryState(3, now), now)


def test_a_failure_counts_once_and_keeps_the_first_failure_time() -> None:
    first = RetryState().after_failure(100.0)
    assert first == RetryState(1, 100.0, 0)
    assert first.after_failure(160.0, error=True) == RetryState(2, 100.0, 1)


async def test_a_retry_is_saved_with_its_due_time_in_a_shared_write(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    retries = Retries(async_redis, f"{namespace}:s")
    batch = Batch(async_redis)
    first, second = await asyncio.gather(
        batch.write(lambda pipe: retries.retry_at(pipe, "1-0", RetryState(2, 100.0, 1), 130.0)),
        batch.write(lambda pipe: retries.retry_at(pipe, "2-0", RetryState(1, 120.0), 150.0)),
    )
    assert len(first) == len(second) == 2  # each lane gets its own commands' results
    assert await retries.get("1-0") == RetryState(2, 100.0, 1, due=130.0)
    assert await retries.get("2-0") == RetryState(1, 120.0, 0, due=150.0)


async def test_closed_lanes_let_go_of_their_entries_even_before_they_ran() -> None:
    done: list[str] = []

    async def work(entry_id: str, fields: Fields) -> None:
        done.append(entry_id)

    lanes = Lanes(work, "conversation")
    await lanes.put([("1-0", {"conversation": "a"})])
    await lanes.close()  # at once: its task never started
    assert lanes.held() == [] and done == []
    await lanes.put([("1-0", {"conversation": "a"})])  # read again after a restart
    await lanes.drain()
    assert done == ["1-0"]
