"""Deleting what a test or benchmark run wrote: every key under its prefixes.

A run writes under a namespace of its own (``prefix(namespace)``, :func:`bot.keys.prefix`)
and, when it runs Rasa, under the tracker store's ``key_prefix``; :func:`delete_keys` (and
:func:`delete_keys_async`) find those keys with SCAN and delete them a chunk at a time, so a
large run never sends Redis one giant DEL. On a Redis Cluster the client
(:func:`bot.redis_conn.connect`) scans every primary and splits each chunk's DEL by hash slot
(redis-py's cluster ``delete``), so keys of several slots (the tracker store's) go as well.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio

from bot.keys import literal

__all__ = ["CHUNK", "delete_keys", "delete_keys_async"]

CHUNK = 1000
"""Keys deleted by one DEL (and asked for by one SCAN)."""


def _pattern(start: str) -> str:
    # SCAN's MATCH reads glob characters as a pattern: a prefix holding one (one that
    # bot.keys.literal would escape) would delete other keys
    if not start or literal(start) != start:
        raise ValueError(f"not a literal key prefix: {start!r}")
    return start + "*"


def delete_keys(client: redis.Redis, *prefixes: str) -> int:
    """Delete every key whose name starts with one of ``prefixes``.

    Args:
        client: A client of the server (a cluster client on a cluster).
        *prefixes: Key prefixes, such as ``prefix(namespace)``; none may be empty or hold a
            glob character (``*``, ``?``, ``[``, ``]``, a backslash).

    Returns:
        How many keys were deleted.

    Raises:
        ValueError: A prefix is empty or holds a glob character (nothing is deleted).
    """
    patterns = [_pattern(start) for start in prefixes]
    deleted = 0
    for pattern in patterns:
        chunk: list[Any] = []
        for name in client.scan_iter(match=pattern, count=CHUNK):
            chunk.append(name)
            if len(chunk) == CHUNK:
                deleted += int(client.delete(*chunk))
                chunk = []
        if chunk:
            deleted += int(client.delete(*chunk))
    return deleted


async def delete_keys_async(client: redis.asyncio.Redis, *prefixes: str) -> int:
    """The asyncio twin of :func:`delete_keys` (same arguments, result and errors)."""
    patterns = [_pattern(start) for start in prefixes]
    deleted = 0
    for pattern in patterns:
        chunk: list[Any] = []
        async for name in client.scan_iter(match=pattern, count=CHUNK):
            chunk.append(name)
            if len(chunk) == CHUNK:
                deleted += int(await client.delete(*chunk))
                chunk = []
        if chunk:
            deleted += int(await client.delete(*chunk))
    return deleted
