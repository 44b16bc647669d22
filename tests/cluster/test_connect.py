"""Connecting to a Redis Cluster: the URL of any node gives a cluster client; transactions."""

from __future__ import annotations

import uuid
from typing import cast

import redis
import redis.asyncio
from redis.crc import key_slot

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


def _move_slot(client: redis.Redis, name: str) -> None:
    """Give the (empty) slot of ``name`` to another primary, as resharding does."""
    cluster = cast(ClusterClient, client)
    owner = cluster.get_node_from_key(name)
    other = next(n for n in cluster.get_primaries() if n.name != owner.name)
    new_owner = other.redis_connection.execute_command("CLUSTER", "MYID")
    slot = key_slot(name.encode())
    for node in cluster.get_primaries():
        node.redis_connection.execute_command("CLUSTER", "SETSLOT", slot, "NODE", new_owner)


async def test_a_transaction_follows_its_slot_to_a_new_primary(
    cluster_client: redis.Redis, async_cluster_client: redis.asyncio.Redis
) -> None:
    ns = f"{{moved-{uuid.uuid4().hex[:8]}}}"
    first, second = key(ns, "a"), key(ns, "b")
    await async_cluster_client.get(first)  # both clients know the layout before the move
    cluster_client.get(first)
    _move_slot(cluster_client, first)
    try:
        with cluster_client.pipeline(transaction=True) as pipe:
            pipe.incr(first)
            pipe.incr(second)
            assert pipe.execute() == [1, 1]  # MOVED: sent again to the new primary
        async with async_cluster_client.pipeline(transaction=True) as apipe:
            apipe.incr(first)
            apipe.incr(second)
            assert await apipe.execute() == [2, 2]
    finally:
        cluster_client.delete(first, second)
