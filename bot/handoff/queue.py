"""The handoff queue in Redis.

Layout under ``{ns}:handoff:``:

* ``case:{id}``: the record (JSON); ``messages:{id}``: what was said after the handoff;
  ``notes:{id}``: agents' internal notes.
* ``open`` and ``open:{team}``: sorted sets of open cases, scored so that a lower score is
  more urgent: priority first, then age.
* ``conversation:{conversation id}``: the open case of a conversation, so a resident who
  writes again joins it instead of opening another.
* ``lease:{id}``: who is working on a case; set with NX and an expiry, so two agents can never
  hold the same case and a case whose agent went away comes back to the queue.
* ``events``: a stream of queue changes for live consoles.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio

from bot.handoff.record import PRIORITIES, HandoffRecord

__all__ = ["Claim", "HandoffQueue"]

_PRIORITY_STEP = 10**13  # larger than any millisecond timestamp of this millennium


@dataclass(frozen=True)
class Claim:
    """A case held by an agent until ``expires_at``."""

    case_id: str
    agent: str
    expires_at: datetime


class HandoffQueue:
    """Open, join, claim, release and resolve handoff cases.

    Args:
        client: An asyncio Redis client (decoded strings).
        namespace: Prefix of every key.
        clock: Returns the current time (injectable for tests).
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        namespace: str = "cr",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.redis = client
        self.prefix = f"{namespace}:handoff"
        self.clock = clock

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    @staticmethod
    def score(record: HandoffRecord) -> float:
        """Queue order: priority first, then the time the case was opened."""
        opened = datetime.fromisoformat(record.created_at)
        return PRIORITIES.index(record.priority) * _PRIORITY_STEP + opened.timestamp() * 1000

    async def open(self, record: HandoffRecord) -> str:
        """Queue ``record``, or add its latest messages to the conversation's open case.

        Returns:
            The id of the case the conversation is now in.
        """
        by_conversation = self._key("conversation", record.conversation_id)
        if await self.redis.set(by_conversation, record.case_id, nx=True):
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(self._key("case", record.case_id), record.to_json())
                pipe.zadd(self._key("open"), {record.case_id: self.score(record)})
                pipe.zadd(self._key("open", record.team), {record.case_id: self.score(record)})
                pipe.xadd(self._key("events"), self._event("opened", record.case_id, record.team))
                await pipe.execute()
            return record.case_id
        case_id = str(await self.redis.get(by_conversation))
        if record.transcript:
            await self.append_message(
                record.conversation_id, "resident", record.transcript[-1]["text"]
            )
        if record.priority == "P1":
            await self.escalate(case_id, record.reason)
        return case_id

    async def get(self, case_id: str) -> HandoffRecord | None:
        """Return a case's record, or None."""
        text = await self.redis.get(self._key("case", case_id))
        return HandoffRecord.from_json(text) if text else None

    async def case_for(self, conversation_id: str) -> str | None:
        """Return the open case of a conversation, if it has one."""
        case_id = await self.redis.get(self._key("conversation", conversation_id))
        return str(case_id) if case_id else None

    async def append_message(self, conversation_id: str, role: str, text: str) -> str | None:
        """Add a message to the conversation's open case; return the case id (None: no case)."""
        case_id = await self.case_for(conversation_id)
        if case_id is None:
            return None
        entry = {"role": role, "text": text, "at": self.clock().isoformat()}
        await self.redis.rpush(self._key("messages", case_id), json.dumps(entry))
        await self.redis.xadd(self._key("events"), self._event("message", case_id, ""))
        return case_id

    async def messages(self, case_id: str) -> list[dict[str, Any]]:
        """Return the messages added since the handoff."""
        items = await self.redis.lrange(self._key("messages", case_id), 0, -1)
        return [json.loads(item) for item in items]

    async def escalate(self, case_id: str, reason: str) -> None:
        """Raise a case to P1 and the safeguarding team (a risk came up after the handoff)."""
        record = await self.get(case_id)
        if record is None or record.priority == "P1":
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._key("open", record.team), case_id)
            record.priority, record.team, record.reason = "P1", "safeguarding", reason
            pipe.set(self._key("case", case_id), record.to_json())
            pipe.zadd(self._key("open"), {case_id: self.score(record)})
            pipe.zadd(self._key("open", record.team), {case_id: self.score(record)})
            pipe.xadd(self._key("events"), self._event("escalated", case_id, record.team))
            await pipe.execute()

    async def claim(self, case_id: str, agent: str, lease_seconds: int = 300) -> Claim | None:
        """Take a case for ``agent`` unless someone else holds it (atomic across processes).

        Claiming again as the same agent renews the lease. Returns None when another agent
        holds the case or it is not open.
        """
        if await self.redis.zscore(self._key("open"), case_id) is None:
            return None
        lease = self._key("lease", case_id)
        taken = await self.redis.set(lease, agent, nx=True, ex=lease_seconds)
        if not taken:
            if await self.redis.get(lease) != agent:
                return None
            await self.redis.expire(lease, lease_seconds)
        expires = datetime.fromtimestamp(self.clock().timestamp() + lease_seconds, UTC)
        await self.redis.xadd(self._key("events"), self._event("claimed", case_id, agent))
        return Claim(case_id, agent, expires)

    async def holder(self, case_id: str) -> str | None:
        """Return the agent holding a case, if any."""
        agent = await self.redis.get(self._key("lease", case_id))
        return str(agent) if agent else None

    async def release(self, case_id: str, agent: str) -> bool:
        """Give a held case back to the queue."""
        lease = self._key("lease", case_id)
        if await self.redis.get(lease) != agent:
            return False
        await self.redis.delete(lease)
        await self.redis.xadd(self._key("events"), self._event("released", case_id, agent))
        return True

    async def reassign(self, case_id: str, team: str) -> None:
        """Move an open case to another team's queue (its lease is dropped)."""
        record = await self.get(case_id)
        if record is None:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._key("open", record.team), case_id)
            record.team = team
            pipe.set(self._key("case", case_id), record.to_json())
            pipe.zadd(self._key("open", team), {case_id: self.score(record)})
            pipe.delete(self._key("lease", case_id))
            pipe.xadd(self._key("events"), self._event("reassigned", case_id, team))
            await pipe.execute()

    async def add_note(self, case_id: str, agent: str, text: str) -> None:
        """Add an internal note (never sent to the resident)."""
        note = {"agent": agent, "text": text, "at": self.clock().isoformat()}
        await self.redis.rpush(self._key("notes", case_id), json.dumps(note))

    async def notes(self, case_id: str) -> list[dict[str, Any]]:
        """Return a case's internal notes."""
        return [json.loads(n) for n in await self.redis.lrange(self._key("notes", case_id), 0, -1)]

    async def close(self, case_id: str, status: str) -> bool:
        """End a case as ``resolved`` or ``returned_to_bot``; False if it was not open."""
        record = await self.get(case_id)
        if record is None or record.status != "open":
            return False
        record.status = status
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key("case", case_id), record.to_json())
            pipe.zrem(self._key("open"), case_id)
            pipe.zrem(self._key("open", record.team), case_id)
            pipe.delete(self._key("lease", case_id))
            pipe.delete(self._key("conversation", record.conversation_id))
            pipe.xadd(self._key("events"), self._event(status, case_id, record.team))
            await pipe.execute()
        return True

    async def list_open(
        self, team: str | None = None, offset: int = 0, limit: int = 50
    ) -> list[HandoffRecord]:
        """Open cases, most urgent first, for one team or all."""
        index = self._key("open", team) if team else self._key("open")
        ids = await self.redis.zrange(index, offset, offset + limit - 1)
        if not ids:
            return []
        texts = await self.redis.mget([self._key("case", case_id) for case_id in ids])
        return [HandoffRecord.from_json(text) for text in texts if text]

    async def count_open(self, team: str | None = None) -> int:
        """How many cases are open (for one team or all)."""
        return int(await self.redis.zcard(self._key("open", team) if team else self._key("open")))

    def _event(self, kind: str, case_id: str, detail: str) -> dict[str, str]:
        return {"kind": kind, "case_id": case_id, "detail": detail, "at": self.clock().isoformat()}
