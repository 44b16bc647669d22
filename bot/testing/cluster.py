"""A real local Redis Cluster for tests: three primaries of the bundled Valkey server.

Fixtures (pytest plugin, registered by ``tests/cluster/conftest.py``):
    cluster_url: a ``redis://`` URL of one node of a cluster of three primaries on loopback,
        started once per test session (``CLUSTER ADDSLOTSRANGE`` and ``CLUSTER MEET``, no
        replicas) and stopped at its end.
    cluster_namespace: a key namespace unique to the test on that cluster, removed afterwards.
    cluster_client / async_cluster_client: clients from :func:`bot.redis_conn.connect` and
        :func:`bot.redis_conn.connect_async` (so cluster clients, found by asking the server).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
import redis.asyncio

from bot.errors import RedisUnavailableError
from bot.keys import prefix
from bot.redis_conn import EmbeddedRedis, connect, connect_async, start_embedded
from bot.services import free_port
from bot.testing.cleanup import delete_keys

__all__ = [
    "SLOTS",
    "async_cluster_client",
    "cluster_client",
    "cluster_namespace",
    "cluster_url",
    "local_cluster",
]

SLOTS = 16384
"""Hash slots of a Redis Cluster."""


def _start_node(data_dir: Path, attempts: int = 3) -> EmbeddedRedis:
    """One cluster node on a free port (tried again if another process took the port)."""
    for attempt in range(attempts):
        try:
            return start_embedded(data_dir, port=free_port(), cluster=True)
        except RedisUnavailableError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _wait_ready(clients: list[redis.Redis], timeout: float) -> None:
    """Until every node reports the cluster ``ok`` and knows all the nodes."""
    deadline = time.monotonic() + timeout
    while True:
        states = [c.cluster("INFO") for c in clients]
        if all(
            s["cluster_state"] == "ok" and int(s["cluster_known_nodes"]) == len(clients)
            for s in states
        ):
            return
        if time.monotonic() > deadline:
            raise RedisUnavailableError("local cluster", f"not ready in {timeout:.0f} s: {states}")
        time.sleep(0.05)


@contextmanager
def local_cluster(data_dir: Path, primaries: int = 3, timeout: float = 30.0) -> Iterator[str]:
    """Start a cluster of ``primaries`` nodes under ``data_dir``; yield a node's URL; stop it.

    Slots are split evenly, in ranges, between the nodes.
    """
    nodes: list[EmbeddedRedis] = []
    clients: list[redis.Redis] = []
    try:
        for index in range(primaries):
            nodes.append(_start_node(data_dir / f"node{index}"))
        clients = [redis.Redis.from_url(n.url, decode_responses=True) for n in nodes]
        share = SLOTS // primaries
        for index, client in enumerate(clients):
            last = SLOTS - 1 if index == primaries - 1 else (index + 1) * share - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", index * share, last)
        port = int(nodes[0].url.rsplit(":", 1)[1].split("/")[0])
        for client in clients[1:]:
            client.execute_command("CLUSTER", "MEET", "127.0.0.1", port)
        _wait_ready(clients, timeout)
        yield nodes[0].url
    finally:
        for client in clients:
            client.close()
        for node in nodes:
            node.stop()


@pytest.fixture(scope="session")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A node of a local cluster of three primaries, for the whole session."""
    with local_cluster(tmp_path_factory.mktemp("cluster")) as url:
        yield url


@pytest.fixture
def cluster_namespace(cluster_url: str) -> Iterator[str]:
    """A namespace (its own hash tag) unique to this test, its keys removed afterwards."""
    name = f"{{test-{uuid.uuid4().hex[:12]}}}"
    yield name
    client = connect(cluster_url)
    try:
        delete_keys(client, prefix(name))
    finally:
        client.close()


@pytest.fixture
def cluster_client(cluster_url: str) -> Iterator[redis.Redis]:
    """A synchronous client of the local cluster (decoded strings)."""
    client = connect(cluster_url)
    yield client
    client.close()


@pytest.fixture
async def async_cluster_client(cluster_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """An asyncio client of the local cluster (decoded strings)."""
    client = await connect_async(cluster_url)
    yield client
    await client.close()
