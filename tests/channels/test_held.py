"""The hold step of closed messaging windows (:mod:`bot.channels.held`), on the test Redis.

It lives in the channels' layer (reports use it, it uses nothing of theirs) and writes the keys
it always wrote: messages held before the move stay readable and releasable.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import redis.asyncio

from bot.channels.held import Holder, pairs
from bot.keys import key

CHANNELS = Path(__file__).resolve().parents[2] / "bot" / "channels"
CID = "whatsapp:+441234567890:+447700900123"
TTL = 3600


def _entry(text: str) -> dict[str, str]:
    return {"conversation_id": CID, "channel": "whatsapp", "text": text, "hold": str(TTL)}


def _imported(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def test_the_channels_layer_imports_nothing_of_reports() -> None:
    found = {
        f"{path.name}: {module}"
        for path in CHANNELS.glob("*.py")
        for module in _imported(path)
        if module == "bot.reports" or module.startswith("bot.reports.")
    }
    assert found == set()


def test_pairs_are_flat_in_order() -> None:
    assert pairs({"a": "1", "b": "2"}) == ["a", "1", "b", "2"]
    assert pairs({}) == []


async def test_the_first_held_message_queues_the_invite_later_ones_only_wait(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    holder = Holder(async_redis, namespace)
    invite = {"conversation_id": CID, "channel": "whatsapp", "text": "", "template": "waiting"}
    assert await holder.hold(_entry("one"), marker="m1", ttl=TTL, now=100.0, invite=invite)
    assert await holder.hold(_entry("two"), marker="m2", ttl=TTL, now=200.0, invite=invite)
    # the same marker again (a retried worker, a redelivered entry): not held twice
    assert not await holder.hold(_entry("one"), marker="m1", ttl=TTL, now=300.0, invite=invite)

    # the key names of the stored data, unchanged by the move to bot.channels
    raw = await async_redis.lrange(key(namespace, "reports", "held", CID), 0, -1)
    held = [json.loads(item) for item in raw]
    assert [dict(zip(p[::2], p[1::2], strict=True))["text"] for p in held] == ["one", "two"]
    # the conversation's score: when its first message was held
    assert await async_redis.zscore(key(namespace, "reports", "held"), CID) == 100.0
    told = key(namespace, "reports", "told", CID)
    assert await async_redis.smembers(told) == {"m1", "m2"}
    assert 0 < await async_redis.ttl(told) <= TTL
    assert 0 < await async_redis.ttl(key(namespace, "reports", "held", CID)) <= TTL
    (queued,) = await async_redis.xrange(key(namespace, "outbox"))
    assert queued[1] == invite


async def test_without_an_invite_the_message_only_waits(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    holder = Holder(async_redis, namespace)
    assert await holder.hold(_entry("one"), marker="m1", ttl=TTL, now=100.0, invite=None)
    assert await async_redis.llen(key(namespace, "reports", "held", CID)) == 1
    assert await async_redis.exists(key(namespace, "outbox")) == 0
