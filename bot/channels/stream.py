"""Reading a Redis stream as one consumer of a group: what the inbox and outbox workers share.

A consumer first takes back the entries it read before a crash or restart (its own pending
ones), then, now and then, entries another consumer left unacknowledged for ``claim_idle_ms``
(XAUTOCLAIM), and otherwise new entries. Entries are grouped into lanes by conversation, so
conversations are worked on concurrently while one conversation's entries stay in order.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio
from redis.exceptions import ResponseError

__all__ = ["Entry", "GroupReader", "ensure_group", "lanes"]

Entry = tuple[str, dict[str, str] | None]
"""A stream id and its fields (None when the entry was deleted while pending)."""


async def ensure_group(client: redis.asyncio.Redis, stream: str, group: str) -> None:
    """Create ``stream`` and its consumer ``group`` if they do not exist."""
    try:
        await client.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def lanes(
    entries: Sequence[Entry], field: str
) -> tuple[dict[str, list[tuple[str, dict[str, str]]]], list[str]]:
    """Group entries by the conversation named in ``field``, keeping their order.

    Returns:
        The lanes by conversation, and the ids of deleted entries (to acknowledge).
    """
    by_conversation: dict[str, list[tuple[str, dict[str, str]]]] = {}
    deleted = []
    for entry_id, fields in entries:
        if fields:
            by_conversation.setdefault(fields.get(field) or entry_id, []).append((entry_id, fields))
        else:
            deleted.append(entry_id)
    return by_conversation, deleted


class GroupReader:
    """One consumer's reads of a stream through a consumer group.

    Args:
        client: Asyncio Redis client (decoded strings).
        stream: The stream's key.
        group: The consumer group.
        consumer: This consumer's name; keep it stable across restarts so its own pending
            entries are taken back first.
        claim_idle_ms: Entries another consumer left unacknowledged this long are taken over
            (looked for every ``claim_idle_ms / 4``, not on every read: one Redis round trip
            fewer per batch).
        block_ms: How long one read waits for new entries.
        batch: Entries read at a time.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        stream: str,
        group: str,
        consumer: str,
        *,
        claim_idle_ms: int,
        block_ms: int,
        batch: int,
    ) -> None:
        self.redis = client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        self.block_ms = block_ms
        self.batch = batch
        self._own_pending_done = False
        self._next_claim = 0.0  # time.monotonic() of the next look for stale entries
        self._claim_from = "0-0"  # where the look goes on while more remain

    async def ensure_group(self) -> None:
        """Create the stream and the group if they do not exist."""
        await ensure_group(self.redis, self.stream, self.group)

    async def backlog(self) -> list[Entry]:
        """Own pending entries (on the first call) and stale entries of other consumers."""
        entries: list[Entry] = []
        if not self._own_pending_done:
            # entries this consumer read before a crash or restart
            entries += await self._read("0", block=False)
            self._own_pending_done = True
        return entries + await self._claim()

    async def new(self, block: bool = True) -> list[Entry]:
        """Entries no consumer has read yet (waiting up to ``block_ms`` when ``block``)."""
        return await self._read(">", block=block)

    async def ack(self, entry_ids: Sequence[str]) -> None:
        """Acknowledge entries with nothing left to do."""
        if entry_ids:
            await self.redis.xack(self.stream, self.group, *entry_ids)

    async def _claim(self) -> list[Entry]:
        # stale entries are rare: look now and then, and again at once while more remain
        if time.monotonic() < self._next_claim:
            return []
        claimed: Any = await self.redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            self.claim_idle_ms,
            self._claim_from,
            count=self.batch,
        )
        self._claim_from = str(claimed[0])
        if self._claim_from == "0-0":  # the whole pending list was looked through
            self._next_claim = time.monotonic() + self.claim_idle_ms / 4000
        return list(claimed[1])

    async def _read(self, start: str, block: bool) -> list[Entry]:
        answer: Any = await self.redis.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: start},
            count=self.batch,
            block=self.block_ms if block else None,
        )
        return list(answer[0][1]) if answer else []
