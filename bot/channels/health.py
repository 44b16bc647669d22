"""Are residents' messages being answered? The channel workers' liveness and backlog.

:func:`channel_health` reads, for the inbox and the outbox: each worker's last heartbeat
(``{stream}:workers``, written by :class:`bot.channels.stream.GroupReader` every couple of
seconds), the stream's length, the entries read but not yet finished (pending), the entries
waiting for a scheduled retry (``{stream}:due``), the dead letters (``{ns}:inbox:dead``) or
failed sends (``{ns}:outbox:failed``), and how long the oldest entry not waiting for a retry
has waited. ``ok`` is false, with the reasons in ``problems`` (plain words for a banner), when
a stream has no live worker or its oldest entry has waited over ``stalled_after`` seconds.
The public edge serves it at ``/health``; the console shows a banner when ``ok`` is false.
"""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio

from bot.channels import inbox, outbox
from bot.keys import key

__all__ = ["channel_health"]

_STREAMS = (
    # role, stream, group, dead letters, what a stall means to people
    ("inbox", ("inbox",), inbox.GROUP, ("inbox", "dead"), "residents' messages are not answered"),
    ("outbox", ("outbox",), outbox.GROUP, ("outbox", "failed"), "replies are not being sent"),
)
_LOOKED_AT = 200
"""Entries looked through for the oldest one not waiting for a retry."""


async def channel_health(
    client: redis.asyncio.Redis,
    namespace: str,
    *,
    now: float | None = None,
    alive_within: float = 30.0,
    stalled_after: float = 120.0,
) -> dict[str, Any]:
    """The liveness and backlog of the inbox and outbox workers.

    Args:
        client: Asyncio Redis client (decoded strings).
        namespace: Key namespace.
        now: Unix seconds (default: the clock).
        alive_within: A worker whose last heartbeat is older is reported dead.
        stalled_after: Seconds the oldest entry may wait (not counting scheduled retries)
            before replies count as not flowing.

    Returns:
        ``{"ok": bool, "problems": [str], "checked_at": float, "inbox": {...},
        "outbox": {...}}``, each stream with ``workers`` (``[{"consumer", "last_beat",
        "alive"}]``), ``live_workers``, ``length``, ``pending``, ``retrying``, ``dead`` (dead
        letters, or failed sends for the outbox) and ``oldest_waiting_seconds`` (None when
        nothing waits).

    Raises:
        redis.RedisError: Redis did not answer (report that as unhealthy too).
    """
    moment = time.time() if now is None else now
    report: dict[str, Any] = {"ok": True, "problems": [], "checked_at": moment}
    for role, stream_parts, group, dead_parts, stall in _STREAMS:
        stream = key(namespace, *stream_parts)
        found = await _stream_health(client, stream, group, key(namespace, *dead_parts), moment)
        for worker in found["workers"]:
            worker["alive"] = moment - worker["last_beat"] < alive_within
        found["live_workers"] = sum(1 for worker in found["workers"] if worker["alive"])
        report[role] = found
        if not found["live_workers"]:
            report["problems"].append(f"no {role} worker is running: {stall}")
        waited = found["oldest_waiting_seconds"]
        if waited is not None and waited > stalled_after:
            report["problems"].append(
                f"the oldest {role} entry has waited {waited:.0f} s: {stall} in time"
            )
    report["ok"] = not report["problems"]
    return report


async def _stream_health(
    client: redis.asyncio.Redis, stream: str, group: str, dead: str, now: float
) -> dict[str, Any]:
    async with client.pipeline(transaction=False) as pipe:
        pipe.xlen(stream)
        pipe.zrange(key(stream, "workers"), 0, -1, withscores=True)
        pipe.zcard(key(stream, "due"))
        pipe.zrangebyscore(key(stream, "due"), now, "+inf")
        pipe.xlen(dead)
        pipe.xrange(stream, count=_LOOKED_AT)
        length, beats, retrying, not_yet_due, dead_count, first = await pipe.execute()
    try:
        summary: Any = await client.xpending(stream, group)
        pending = int(summary["pending"])
    except redis.ResponseError:  # no group yet: no worker ever started
        pending = 0
    scheduled = set(not_yet_due)  # an entry waiting for its retry is not stalled
    waiting = [entry_id for entry_id, _ in first if entry_id not in scheduled]
    oldest = None
    if waiting:
        oldest = max(0.0, now - int(waiting[0].split("-", 1)[0]) / 1000)
    return {
        "workers": [{"consumer": consumer, "last_beat": float(beat)} for consumer, beat in beats],
        "length": int(length),
        "pending": pending,
        "retrying": int(retrying),
        "dead": int(dead_count),
        "oldest_waiting_seconds": oldest,
    }
