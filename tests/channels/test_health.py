"""The channels' health: are the workers alive, and are replies flowing?"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import redis.asyncio

from bot.channels.base import InboundMessage, OutboundMessage
from bot.channels.health import channel_health
from bot.channels.inbox import Inbox, InboxWorker
from bot.channels.outbox import OutboxWorker


def message(message_id: str) -> InboundMessage:
    return InboundMessage(
        channel="telegram",
        account="councilbot",
        sender="123456789",
        message_id=message_id,
        text="When is my bin day?",
        received_at=time.time(),
    )


async def echo(incoming: InboundMessage) -> Sequence[OutboundMessage]:
    return [OutboundMessage(f"reply to {incoming.text}")]


async def test_nothing_running_is_reported_with_the_reason(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    health = await channel_health(async_redis, namespace)
    assert health["ok"] is False
    assert health["problems"] == [
        "no inbox worker is running: residents' messages are not answered",
        "no outbox worker is running: replies are not being sent",
    ]
    assert health["inbox"]["length"] == 0 and health["inbox"]["workers"] == []


async def test_live_workers_and_their_backlog(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    inbox = Inbox(async_redis, namespace)
    await inbox.ensure_group()
    worker = InboxWorker(async_redis, echo, namespace, consumer="host-1-aaaaaa", block_ms=10)
    sender = OutboxWorker(async_redis, {}, namespace, consumer="host-1-aaaaaa", block_ms=10)
    await sender.ensure_group()
    await worker.step(block=False)
    await sender.step(block=False)
    await inbox.accept([message("1"), message("2")])
    await async_redis.xadd(f"{namespace}:inbox:dead", {"message": "{", "reason": "unreadable"})
    await async_redis.zadd(f"{namespace}:outbox:due", {"1-0": time.time() + 20})

    health = await channel_health(async_redis, namespace)
    assert health["ok"] is True and health["problems"] == []
    [alive] = health["inbox"]["workers"]
    assert alive["consumer"] == "host-1-aaaaaa" and alive["alive"] is True
    assert health["inbox"]["live_workers"] == 1 and health["outbox"]["live_workers"] == 1
    assert health["inbox"]["length"] == 2
    assert health["inbox"]["pending"] == 0
    assert health["inbox"]["dead"] == 1
    assert 0 <= health["inbox"]["oldest_waiting_seconds"] < 5
    assert health["outbox"]["retrying"] == 1
    assert health["outbox"]["oldest_waiting_seconds"] is None

    # three minutes later, nothing has moved and nobody beat
    later = await channel_health(async_redis, namespace, now=time.time() + 180)
    assert later["ok"] is False
    assert later["inbox"]["workers"][0]["alive"] is False
    assert "no inbox worker is running: residents' messages are not answered" in later["problems"]
    assert any(p.startswith("the oldest inbox entry has waited 18") for p in later["problems"])

    await worker.run_once(block=False)
    health = await channel_health(async_redis, namespace)
    assert health["inbox"]["length"] == 0 and health["outbox"]["length"] == 2
    assert health["outbox"]["pending"] == 0


async def test_a_stopped_worker_shows_as_dead_at_once(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    worker = InboxWorker(async_redis, echo, namespace, consumer="host-1-aaaaaa", block_ms=10)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    async with asyncio.timeout(5):
        while not (await channel_health(async_redis, namespace))["inbox"]["live_workers"]:
            await asyncio.sleep(0.01)
    stop.set()
    await running
    health = await channel_health(async_redis, namespace)
    assert health["inbox"]["workers"] == []  # left the group cleanly
    assert health["ok"] is False
