"""Deleting a run's keys (bot.testing.cleanup): all of them, in chunks, nothing else."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis
import redis.asyncio

from bot.keys import key, prefix
from bot.testing.cleanup import CHUNK, delete_keys, delete_keys_async

MANY = 2 * CHUNK + 5


def _write(client: redis.Redis, namespace: str, trackers: str) -> str:
    """``MANY`` keys of the namespace, three under ``trackers``; returns a neighbour's key."""
    with client.pipeline(transaction=False) as pipe:
        for n in range(MANY):
            pipe.set(key(namespace, "k", str(n)), "1")
        for n in range(3):  # no hash tag, as Rasa's tracker store: spread over a cluster's slots
            pipe.set(f"{trackers}{n}", "1")
        pipe.execute()
    neighbour = key(namespace + "x", "kept")  # "{test:…}x:kept": not under "{test:…}:"
    client.set(neighbour, "1")
    return neighbour


def test_every_key_under_the_prefixes_goes_in_chunks(
    redis_client: redis.Redis, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    trackers = f"t{uuid.uuid4().hex[:10]}:"
    neighbour = _write(redis_client, namespace, trackers)
    sizes: list[int] = []
    delete = redis_client.delete

    def recording(*names: Any) -> Any:
        sizes.append(len(names))
        return delete(*names)

    monkeypatch.setattr(redis_client, "delete", recording)
    try:
        assert delete_keys(redis_client, prefix(namespace), trackers) == MANY + 3
        assert max(sizes) == CHUNK
        assert list(redis_client.scan_iter(match=f"{prefix(namespace)}*")) == []
        assert list(redis_client.scan_iter(match=f"{trackers}*")) == []
        assert redis_client.exists(neighbour)
    finally:
        delete(neighbour)


async def test_the_asyncio_client_deletes_the_same(
    redis_client: redis.Redis, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    trackers = f"t{uuid.uuid4().hex[:10]}:"
    neighbour = _write(redis_client, namespace, trackers)
    try:
        assert await delete_keys_async(async_redis, prefix(namespace), trackers) == MANY + 3
        assert [k async for k in async_redis.scan_iter(match=f"{prefix(namespace)}*")] == []
        assert [k async for k in async_redis.scan_iter(match=f"{trackers}*")] == []
        assert await async_redis.exists(neighbour)
    finally:
        await async_redis.delete(neighbour)


@pytest.mark.parametrize("start", ["", "{test:*}:", "t?", "t[ab]", "t\\"])
async def test_a_prefix_that_is_a_pattern_deletes_nothing(
    redis_client: redis.Redis, async_redis: redis.asyncio.Redis, namespace: str, start: str
) -> None:
    redis_client.set(key(namespace, "kept"), "1")
    with pytest.raises(ValueError, match="not a literal key prefix"):
        delete_keys(redis_client, prefix(namespace), start)
    with pytest.raises(ValueError, match="not a literal key prefix"):
        await delete_keys_async(async_redis, prefix(namespace), start)
    assert redis_client.exists(key(namespace, "kept"))
