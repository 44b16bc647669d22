"""Messaging windows: when the resident last wrote, and what may be sent now.

WhatsApp allows free text only within 24 hours of the resident's last inbound message
(afterwards only an approved template); Messenger and Instagram allow 24 hours, then agents'
replies with the ``HUMAN_AGENT`` tag up to 7 days. Our own messages never extend a window.

The last inbound time of every conversation is one sorted set, ``{ns}:window:last``
(member: conversation id, score: Unix seconds), updated with ``ZADD GT`` so a late retry of
an old message never moves it backwards.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import redis.asyncio

from bot.keys import key
from bot.keys import namespace as default_namespace

__all__ = [
    "HUMAN_AGENT_CHANNELS",
    "HUMAN_AGENT_SECONDS",
    "KEEP_SECONDS",
    "WINDOW_SECONDS",
    "last_inbound",
    "touch",
    "window_key",
    "window_state",
]

WINDOW_SECONDS = {"whatsapp": 24 * 3600.0, "messenger": 24 * 3600.0, "instagram": 24 * 3600.0}
"""Channels with a free-text window, and its length."""
HUMAN_AGENT_CHANNELS = frozenset({"messenger", "instagram"})
"""Channels where agents may reply with the ``HUMAN_AGENT`` tag after the window closes."""
HUMAN_AGENT_SECONDS = 7 * 24 * 3600.0
"""How long after the resident's last message Messenger accepts ``HUMAN_AGENT`` replies."""
KEEP_SECONDS = 8 * 24 * 3600.0
"""Older entries no longer affect any window and are trimmed."""


def window_key(ns: str) -> str:
    """The sorted set of last inbound times."""
    return key(ns, "window", "last")


async def touch(
    client: redis.asyncio.Redis,
    conversation_id: str,
    at: float,
    ns: str,
    *,
    now: float | None = None,
) -> None:
    """Record an inbound message at ``at`` (never moves the time backwards)."""
    moment = time.time() if now is None else now
    async with client.pipeline(transaction=False) as pipe:
        pipe.zadd(window_key(ns), {conversation_id: at}, gt=True)
        pipe.zremrangebyscore(window_key(ns), "-inf", moment - KEEP_SECONDS)
        await pipe.execute()


async def last_inbound(client: redis.asyncio.Redis, conversation_id: str, ns: str) -> float | None:
    """Unix seconds of the resident's last inbound message, if we have one."""
    score = await client.zscore(window_key(ns), conversation_id)
    return None if score is None else float(score)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


async def window_state(
    client: redis.asyncio.Redis,
    conversation_id: str,
    *,
    namespace: str | None = None,
    now: float | None = None,
) -> dict[str, Any] | None:
    """The messaging window of a conversation, for the handoff record and the outbox.

    Args:
        client: Asyncio Redis client.
        conversation_id: ``"{channel}:{account}:{sender}"``.
        namespace: Key namespace (default: this process', ``bot.keys.namespace()``).
        now: Unix seconds (default: the clock).

    Returns:
        None when the channel has no window; otherwise ``{"open", "closes_at",
        "human_agent_until", "last_inbound_at"}`` with ISO times (None when unknown or, for
        ``human_agent_until``, when the channel has no such extension).
    """
    channel = conversation_id.split(":", 1)[0]
    length = WINDOW_SECONDS.get(channel)
    if length is None:
        return None
    ns = namespace or default_namespace()
    moment = time.time() if now is None else now
    last = await last_inbound(client, conversation_id, ns)
    if last is None:
        return {
            "open": False,
            "closes_at": None,
            "human_agent_until": None,
            "last_inbound_at": None,
        }
    closes = last + length
    agent_until = last + HUMAN_AGENT_SECONDS if channel in HUMAN_AGENT_CHANNELS else None
    return {
        "open": moment < closes,
        "closes_at": _iso(closes),
        "human_agent_until": _iso(agent_until) if agent_until is not None else None,
        "last_inbound_at": _iso(last),
    }
