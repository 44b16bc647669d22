"""Tests of this folder run on a local Redis Cluster of three primaries (bot.testing.cluster).

``redis_url`` is overridden with the cluster's, so the shared fixtures (``namespace``,
``redis_client``, ``async_redis``) and the store tests re-run here from other folders use the
cluster; the other folders' fixtures those tests need are imported below.
"""

from __future__ import annotations

import pytest
from channels.conftest import sleeps
from handoff.conftest import handoff_clock, queue
from knowledge.conftest import cached_encoder, encoder, kb

from bot.testing.cluster import (
    async_cluster_client,
    cluster_client,
    cluster_namespace,
    cluster_url,
)

__all__ = [
    "async_cluster_client",
    "cached_encoder",
    "cluster_client",
    "cluster_namespace",
    "cluster_url",
    "encoder",
    "handoff_clock",
    "kb",
    "queue",
    "redis_url",
    "sleeps",
]


@pytest.fixture(scope="session")
def redis_url(cluster_url: str) -> str:
    """The local cluster, for every fixture and test of this folder."""
    return cluster_url
