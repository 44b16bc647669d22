"""Connections the actions share, opened once per action-server process.

The action server is told where Redis is by ``REDIS_URL`` and which key namespace to use by
``COUNCIL_NAMESPACE``; a Redis that does not answer makes the action fail loudly (the resident's
message stays in the tracker, and Rasa reports the failed action).
"""

from __future__ import annotations

import redis.asyncio

from bot.handoff.queue import HandoffQueue
from bot.keys import namespace
from bot.redis_conn import connect_async, redis_url

__all__ = ["handoff_queue", "shared_redis"]

_client: redis.asyncio.Redis | None = None


async def shared_redis() -> redis.asyncio.Redis:
    """Return this process' asyncio Redis client, connecting on first use."""
    global _client  # one pool per process, created lazily inside the server's event loop
    if _client is None:
        _client = await connect_async(redis_url())
    return _client


async def handoff_queue() -> HandoffQueue:
    """Return the handoff queue of this deployment's namespace."""
    return HandoffQueue(await shared_redis(), namespace())
