"""Connecting to a Redis Cluster: the URL of any node gives a cluster client; transactions."""

from __future__ import annotations

import redis
import redis.asyncio

from bot.keys import key
from bot.redis_cluster import AsyncClusterClient, ClusterClient


def test_a_node_url_gives_a_cluster_client(cluster_client: redis.Redis) -> None:
    assert isinstance(cluster_client, ClusterClient)
    # three primaries answer: keys of different slots live on different nodes
    assert len(cluster_client.get_primaries()) == 3


def test_a_transaction_on_one_slot(cluster_client: redis.Redis, cluster_namespace: str) -> None:
    counter, log = key(cluster_namespace, "n"), key(cluster_namespace, "log")
    with cluster_client.pipeline(transaction=True) as pipe:
        pipe.incr(counter)
        pipe.rpush(log, "a")
        pipe.hset(key(cluster_namespace, "h"), mapping={"x": "1"})
        assert pipe.execute() == [1, 1, 1]
    assert cluster_client.lrange(log, 0, -1) == ["a"]


async def test_an_async_transaction_with_watch(
    async_cluster_client: redis.asyncio.Redis, cluster_namespace: str
) -> None:
    assert isinstance(async_cluster_client, AsyncClusterClient)
    seq = key(cluster_namespace, "seq")
    await async_cluster_client.set(seq, "1")
    async with async_cluster_client.pipeline(transaction=True) as pipe:
        await pipe.watch(seq)
        current = int(await pipe.get(seq))
        pipe.multi()
        pipe.set(seq, str(current + 1))
        pipe.hgetall(key(cluster_namespace, "none"))
        assert await pipe.execute() == [True, {}]
    assert await async_cluster_client.get(seq) == "2"
