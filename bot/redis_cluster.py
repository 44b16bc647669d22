"""Redis Cluster clients whose transactions work on keys of one hash slot.

``REDIS_URL`` may name any node of a Redis Cluster or Valkey cluster: :func:`bot.redis_conn.connect`
asks the server (``INFO cluster``) and, on a cluster, returns :class:`ClusterClient` (or
:class:`AsyncClusterClient`). They are redis-py's cluster clients with one addition: redis-py 4.6
refuses ``pipeline(transaction=True)`` on a cluster, and this project's transactions (MULTI/EXEC,
WATCH) need it. Every key of a deployment carries the namespace's hash tag (:mod:`bot.keys`), so
a transaction's keys share one slot: :class:`ClusterClient` runs it on the primary serving the
slot of its first key, over that node's own connections. Lua scripts need nothing: redis-py sends
them to the node of their keys.

A transaction that meets a moved slot makes the client read the cluster's layout again and
runs on the slot's new primary (the old one ran none of its commands); one that held a WATCH,
or lost its primary, fails as on a single server that restarts, and the next one finds the new
primary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import redis
import redis.asyncio.client
import redis.asyncio.cluster
import redis.client
import redis.cluster
from redis.exceptions import AskError, MovedError, ReadOnlyError, TimeoutError
from redis.exceptions import ConnectionError as RedisConnectionError

__all__ = ["AsyncClusterClient", "ClusterClient", "is_cluster", "on_cluster"]


def is_cluster(info: Mapping[str, Any]) -> bool:
    """``INFO cluster`` (as redis-py returns it) says the server is a Redis Cluster node."""
    return str(info.get("cluster_enabled", 0)) == "1"


def on_cluster(client: redis.Redis) -> redis.Redis:
    """``client``, or when its server is a cluster node, a cluster client with its settings.

    For clients built by others (Rasa's stores): the cluster client keeps their connection
    settings (password, TLS, timeouts, decoding); ``client`` is closed then.

    Raises:
        redis.RedisError: The server does not answer; a cluster client asked for a database
            other than 0 (``RedisClusterException``).
    """
    try:
        info = client.info("cluster")
    except redis.ResponseError:  # INFO refused (some managed services): not a cluster
        return client
    if not is_cluster(info):
        return client
    settings = dict(client.connection_pool.connection_kwargs)
    if int(settings.pop("db", 0) or 0):
        raise redis.cluster.RedisClusterException("a Redis Cluster has database 0 only")
    if issubclass(client.connection_pool.connection_class, redis.SSLConnection):
        settings["ssl"] = True
    client.close()
    cluster = ClusterClient(**settings)
    # the cluster client answers the same commands: callers keep one client type
    return cast(redis.Redis, cluster)


def _layout_changed(exc: Exception) -> bool:
    """The error means the slot has another primary now (moved, failed over, unreachable)."""
    return isinstance(exc, (RedisConnectionError, TimeoutError, AskError, ReadOnlyError))


def _run_again(exc: Exception, watched: bool, stack: list[Any]) -> bool:
    """Whether a failed transaction can be sent again to the slot's new primary.

    MOVED answers the queued commands, so the server ran none of them (EXECABORT); a WATCH was
    on the old primary, so the caller's read-and-write must start again instead.
    """
    return isinstance(exc, MovedError) and not watched and bool(stack)


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
        stack, watched = list(self.command_stack), self.watching
        try:
            results: list[Any] = super().execute(raise_on_error)
            return results
        except Exception as exc:
            self._forget_layout(exc)
            if not _run_again(exc, watched, stack):
                raise
        self._bound = False
        for args, options in stack:
            self.execute_command(*args, **options)
        results = super().execute(raise_on_error)
        return results

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
        stack, watched = list(self.command_stack), self.watching
        try:
            results: list[Any] = await super().execute(raise_on_error)
            return results
        except Exception as exc:
            await self._forget_layout(exc)
            if not _run_again(exc, watched, stack):
                raise
        self._bound = False
        for args, options in stack:
            self.execute_command(*args, **options)
        results = await super().execute(raise_on_error)
        return results

    async def _forget_layout(self, exc: Exception) -> None:
        if _layout_changed(exc):
            await self._cluster.forget_layout()


_STREAM_SUBCOMMANDS = ("XGROUP ", "XINFO ")


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

    async def _determine_slot(self, command: str, *args: Any) -> int:
        # redis-py 4.6's asyncio cluster finds no key in "XGROUP CREATE" (it reads XGROUP's
        # key position, 0, not its subcommands'); their key is the stream, the first argument
        if command.startswith(_STREAM_SUBCOMMANDS) and args:
            return int(self.keyslot(args[0]))
        slot: int = await super()._determine_slot(command, *args)
        return slot

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
        """Read the cluster's layout again (pools stay: other transactions may be using them)."""
        await self.nodes_manager.initialize()

    async def close(self) -> None:
        """Close the cluster's connections and the transactions' pools."""
        await self._close_pools()
        await super().close()

    async def _close_pools(self) -> None:
        pools, self._node_pools = list(self._node_pools.values()), {}
        for pool in pools:
            await pool.disconnect()
