"""Redis Cluster clients whose transactions work on keys of one hash slot.

``REDIS_URL`` may name any node of a Redis Cluster or Valkey cluster: :func:`bot.redis_conn.connect`
asks the server (``INFO cluster``) and, on a cluster, returns :class:`ClusterClient` (or
:class:`AsyncClusterClient`). They are redis-py's cluster clients with one addition: redis-py 4.6
refuses ``pipeline(transaction=True)`` on a cluster, and this project's transactions (MULTI/EXEC,
WATCH) need it. Every key of a deployment carries the namespace's hash tag (:mod:`bot.keys`), so
a transaction's keys share one slot: :class:`ClusterClient` runs it on the primary serving the
slot of its first key, over that node's own connections. Lua scripts need nothing: redis-py sends
them to the node of their keys.

A transaction that meets a moved slot or a lost primary fails (as on a single server that
restarts) and makes the client read the cluster's layout again, so the next one finds the new
primary.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio.client
import redis.asyncio.cluster
import redis.client
import redis.cluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError, TimeoutError

__all__ = ["AsyncClusterClient", "ClusterClient"]


def _layout_changed(exc: Exception) -> bool:
    """The error means the slot has another primary now (moved, failed over, unreachable)."""
    if isinstance(exc, (RedisConnectionError, TimeoutError)):
        return True
    return isinstance(exc, ResponseError) and str(exc).startswith(("MOVED", "ASK", "READONLY"))


class _SlotTransaction(redis.client.Pipeline):
    """A MULTI/EXEC pipeline bound, at its first key, to the primary serving that key's slot."""

    def __init__(self, cluster: ClusterClient) -> None:
        super().__init__(None, {}, True, None)
        self._cluster = cluster
        self._bound = False

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if not self._bound:
            if len(args) < 2:  # a command and its key
                raise redis.cluster.RedisClusterException(
                    f"{args[0]} first in a cluster transaction: no key to find the node"
                )
            node = self._cluster.get_node_from_key(args[1])
            client = node.redis_connection
            self.connection_pool = client.connection_pool
            self.response_callbacks = client.response_callbacks
            self._bound = True
        try:
            return super().execute_command(*args, **kwargs)
        except Exception as exc:
            self._forget_layout(exc)
            raise

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        try:
            results: list[Any] = super().execute(raise_on_error)
            return results
        except Exception as exc:
            self._forget_layout(exc)
            raise

    def _forget_layout(self, exc: Exception) -> None:
        if _layout_changed(exc):
            self._cluster.nodes_manager.initialize()


class ClusterClient(redis.cluster.RedisCluster):
    """redis-py's synchronous cluster client, with single-slot transactions (module docstring)."""

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> Any:
        """MULTI/EXEC when ``transaction`` is true, else redis-py's cluster pipeline."""
        if transaction:
            return _SlotTransaction(self)
        return super().pipeline(transaction, shard_hint)


class _AsyncSlotTransaction(redis.asyncio.client.Pipeline):
    """The asyncio twin of :class:`_SlotTransaction` (its node's pool is kept by the client)."""

    def __init__(self, cluster: AsyncClusterClient) -> None:
        super().__init__(None, {}, True, None)
        self._cluster = cluster
        self._bound = False

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if not self._bound:
            if len(args) < 2:  # a command and its key
                raise redis.cluster.RedisClusterException(
                    f"{args[0]} first in a cluster transaction: no key to find the node"
                )
            node = self._cluster.get_node_from_key(args[1])
            self.connection_pool = self._cluster.node_pool(node)
            self.response_callbacks = node.response_callbacks
            self._bound = True
        if (self.watching or args[0] == "WATCH") and not self.explicit_transaction:
            return self._immediate(*args, **kwargs)
        return super().execute_command(*args, **kwargs)

    async def _immediate(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_command(*args, **kwargs)
        except Exception as exc:
            await self._forget_layout(exc)
            raise

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        try:
            results: list[Any] = await super().execute(raise_on_error)
            return results
        except Exception as exc:
            await self._forget_layout(exc)
            raise

    async def _forget_layout(self, exc: Exception) -> None:
        if _layout_changed(exc):
            await self._cluster.forget_layout()


class AsyncClusterClient(redis.asyncio.cluster.RedisCluster):
    """redis-py's asyncio cluster client, with single-slot transactions (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._node_pools: dict[str, redis.asyncio.ConnectionPool] = {}

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> Any:
        """MULTI/EXEC when ``transaction`` is true, else redis-py's cluster pipeline."""
        if transaction:
            return _AsyncSlotTransaction(self)
        return super().pipeline(transaction, shard_hint)

    def node_pool(self, node: redis.asyncio.cluster.ClusterNode) -> redis.asyncio.ConnectionPool:
        """The connection pool of transactions on ``node`` (the cluster node keeps no pool)."""
        pool = self._node_pools.get(node.name)
        if pool is None:
            # the node's connection settings hold its host and port
            pool = redis.asyncio.ConnectionPool(
                connection_class=node.connection_class, **node.connection_kwargs
            )
            self._node_pools[node.name] = pool
        return pool

    async def forget_layout(self) -> None:
        """Read the cluster's layout again and drop the transactions' pools."""
        await self._close_pools()
        await self.nodes_manager.initialize()

    async def close(self) -> None:
        """Close the cluster's connections and the transactions' pools."""
        await self._close_pools()
        await super().close()

    async def _close_pools(self) -> None:
        pools, self._node_pools = list(self._node_pools.values()), {}
        for pool in pools:
            await pool.disconnect()
