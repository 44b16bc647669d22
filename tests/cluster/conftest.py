"""The local Redis Cluster fixtures (bot.testing.cluster) for the tests of this folder."""

from __future__ import annotations

from bot.testing.cluster import (
    async_cluster_client,
    cluster_client,
    cluster_namespace,
    cluster_url,
)

__all__ = ["async_cluster_client", "cluster_client", "cluster_namespace", "cluster_url"]
