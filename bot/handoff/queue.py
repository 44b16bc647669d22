"""The handoff queue in Redis.

Layout under ``{ns}:handoff:``:

* ``case:{id}``: the record (JSON); ``messages:{id}``: what was said after the handoff;
  ``notes:{id}``: agents' internal notes; ``meta:{id}``: a hash of timings
  (``first_response_at``, ``first_response_by``, ``closed_at``, ``closed_by``).
* ``open`` and ``open:{team}``: sorted sets of open cases, scored so that a lower score is
  more urgent: priority first, then age.
* ``cases``: every case ever opened, scored by its opening time in ms (reports, history).
* ``conversation:{conversation id}``: the open case of a conversation, so a resident who
  writes again joins it instead of opening another.
* ``contact:{kind}:{value}``: cases of one resident (``id:{channel}:{sender}``, ``phone:{digits}``,
  ``email:{address}``), so an agent sees the resident's earlier conversations on any channel.
* ``lease:{id}``: who is working on a case; set atomically (Lua) with an expiry, so two agents
  can never hold the same case and a case whose agent went away comes back to the queue.
* ``events``: a capped stream of queue changes for live consoles.
* ``op:{random id}``: marks a write as done for an hour (see below).

While a case is claimed its record keeps ``status == "open"``: the lease says who holds it.

Every change is one atomic step (a Lua script, or a ``WATCH``/``MULTI`` transaction) that is
safe to repeat, because the Redis client repeats commands after a connection error (a Redis
restart, see :mod:`bot.redis_conn`), and a command whose reply was lost may already have run.
Opening is guarded by the conversation's open case, claiming by the lease (the same agent only
renews it); other writes carry a random operation id and write ``op:{id}`` in the same step, so
running them again finds the marker and does nothing more, but still reports what the first run
did. Transactions are repeated whole (:meth:`HandoffQueue._update`) after a connection error.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import redis.asyncio
from redis.exceptions import WatchError

from bot.handoff.record import PRIORITIES, HandoffRecord
from bot.keys import key

__all__ = ["CLOSED_STATUSES", "OP_SECONDS", "Claim", "HandoffQueue", "contact_keys", "op_key"]

T = TypeVar("T")

CLOSED_STATUSES = ("resolved", "returned_to_bot")
_PRIORITY_STEP = 10**13  # larger than any millisecond timestamp of this millennium
_EVENTS_MAXLEN = 10_000
_PHONE_CHANNELS = frozenset({"whatsapp", "sms"})
_NOT_DIGIT = re.compile(r"\D")
OP_SECONDS = 3600
"""How long an operation marker (``op:{id}``) is kept: far longer than any retry takes."""

# Opening is one atomic step so two processes handling the same resident cannot open two cases.
# Run again (a retry after a lost reply), it finds the conversation's case, which is this very
# case, and changes nothing. KEYS[7..] are the resident's contact indexes.
_OPEN = """
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[1])
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[6], '*',
  'kind', 'opened', 'case_id', ARGV[1], 'detail', ARGV[4], 'at', ARGV[7])
for i = 7, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[5], ARGV[1])
end
return ARGV[1]
"""
# A message and its side effects once per operation id (KEYS[4]), however often it is sent.
_APPEND = """
if not redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[6]) then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
if ARGV[2] == 'agent' then redis.call('HSETNX', KEYS[2], 'first_response_at', ARGV[3]) end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*',
  'kind', 'message', 'case_id', ARGV[4], 'detail', ARGV[2], 'at', ARGV[3])
return 1
"""
_PUSH_ONCE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
  redis.call('RPUSH', KEYS[1], ARGV[1])
end
return 1
"""
# Check-and-set in one step: renewing a lease must never extend another agent's lease. Safe to
# run again: the second run finds the agent's own lease and only renews it (no second event).
_CLAIM = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
if not holder then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*',
    'kind', 'claimed', 'case_id', ARGV[1], 'detail', ARGV[2], 'at', ARGV[5])
end
return 1
"""
# The operation marker (KEYS[3]) tells a repeated run that the first one released the lease:
# without it the repeat would find no lease and report a failure that did not happen.
_RELEASE = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 1 end
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[3], '1', 'EX', ARGV[5])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',
  'kind', 'released', 'case_id', ARGV[1], 'detail', ARGV[2], 'at', ARGV[4])
return 1
"""


@dataclass(frozen=True)
class Claim:
    """A case held by an agent until ``expires_at``."""

    case_id: str
    agent: str
    expires_at: datetime


def op_key(namespace: str) -> str:
    """A new operation marker key (``{ns}:handoff:op:{random id}``) for a write done once."""
    return key(namespace, "handoff", "op", uuid.uuid4().hex)


async def _ignore(error: Exception) -> None:
    return None


def contact_keys(record: HandoffRecord) -> list[str]:
    """Return the ways to recognise the resident of a case on any channel.

    The channel id always; a phone number when the channel id is one (WhatsApp, SMS) or the
    resident gave one (entity ``phone``); an email address when given (entity ``email``).
    """
    found = [f"id:{record.channel}:{record.sender}"]
    phones = list(record.entities.get("phone", []))
    if record.channel in _PHONE_CHANNELS:
        phones.append(record.sender)
    for phone in phones:
        digits = _NOT_DIGIT.sub("", phone)
        if digits.startswith("0"):
            digits = "44" + digits[1:]  # UK national format to international
        if len(digits) >= 9:
            found.append(f"phone:{digits}")
    found += [f"email:{email.strip().lower()}" for email in record.entities.get("email", [])]
    return list(dict.fromkeys(found))


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
        self.namespace = namespace
        self.prefix = key(namespace, "handoff")
        self.clock = clock
        self._open = client.register_script(_OPEN)
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)
        self._append = client.register_script(_APPEND)
        self._push_once = client.register_script(_PUSH_ONCE)

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def repeatable(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run ``operation``, again after a connection error, under the client's retry policy.

        For operations that are safe to run twice (reads, guarded writes): redis-py repeats
        single commands itself, but not a pipeline or a transaction that lost its connection.
        With no retry policy on the client, the operation runs once. The last error surfaces.
        """
        policy = self.redis.get_retry()
        if policy is None:
            return await operation()
        result: T = await policy.call_with_retry(operation, _ignore)
        return result

    @property
    def events_key(self) -> str:
        """The stream of queue changes (``opened``, ``claimed``, ``message``...)."""
        return self._key("events")

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
        opened_ms = datetime.fromisoformat(record.created_at).timestamp() * 1000
        case_id = str(
            await self._open(
                keys=[
                    self._key("conversation", record.conversation_id),
                    self._key("case", record.case_id),
                    self._key("open"),
                    self._key("open", record.team),
                    self._key("cases"),
                    self.events_key,
                    *(self._key("contact", contact) for contact in contact_keys(record)),
                ],
                args=[
                    record.case_id,
                    record.to_json(),
                    self.score(record),
                    record.team,
                    opened_ms,
                    _EVENTS_MAXLEN,
                    self.clock().isoformat(),
                ],
            )
        )
        if case_id == record.case_id:
            return case_id
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
        """Add a message to the conversation's open case; return the case id (None: no case).

        The first ``agent`` message is the case's first response (service levels, reports).
        """
        case_id = await self.case_for(conversation_id)
        if case_id is None:
            return None
        now = self.clock().isoformat()
        entry = {"role": role, "text": text, "at": now}
        await self._append(
            keys=[
                self._key("messages", case_id),
                self._key("meta", case_id),
                self.events_key,
                op_key(self.namespace),
            ],
            args=[
                json.dumps(entry, ensure_ascii=False),
                role,
                now,
                case_id,
                _EVENTS_MAXLEN,
                OP_SECONDS,
            ],
        )
        return case_id

    async def messages(self, case_id: str) -> list[dict[str, Any]]:
        """Return the messages added since the handoff."""
        items = await self.redis.lrange(self._key("messages", case_id), 0, -1)
        return [json.loads(item) for item in items]

    async def transcript(self, case_id: str) -> list[dict[str, Any]]:
        """Return the whole conversation: the record's transcript, then later messages."""
        record = await self.get(case_id)
        earlier = record.transcript if record else []
        return [*earlier, *await self.messages(case_id)]

    async def meta(self, case_id: str) -> dict[str, str]:
        """Return a case's timings (``first_response_at``, ``closed_at``...)."""
        found: dict[str, str] = await self.redis.hgetall(self._key("meta", case_id))
        return found

    async def metas(self, case_ids: list[str]) -> list[dict[str, str]]:
        """Timings of several cases, in the order given."""

        async def read() -> list[dict[str, str]]:
            async with self.redis.pipeline(transaction=False) as pipe:
                for case_id in case_ids:
                    pipe.hgetall(self._key("meta", case_id))
                found: list[dict[str, str]] = await pipe.execute()
            return found

        return await self.repeatable(read)

    async def _update(
        self,
        case_id: str,
        change: Callable[[HandoffRecord], bool],
        extra: Callable[[Any, HandoffRecord, HandoffRecord], None],
    ) -> HandoffRecord | None:
        """Change a record atomically (optimistic locking, retried on conflict).

        ``change`` edits the record in place and returns False to leave it alone; ``extra``
        queues more commands on the transaction given the old and the new record.

        Returns:
            The changed record; None when ``change`` declined or there is no such case.
        """
        key = self._key("case", case_id)
        # The transaction also writes this operation's marker. A connection lost during EXEC
        # leaves us not knowing whether it ran (redis-py raises WatchError, or ConnectionError
        # before WATCH took hold); the next attempt reads the marker with the record, so a
        # change that did run is reported as done instead of being made (or refused) again.
        done = op_key(self.namespace)

        async def attempt() -> HandoffRecord | None:
            async with self.redis.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        await pipe.watch(key, done)
                        text, applied = await pipe.mget(key, done)
                        if not text:
                            return None
                        if applied:
                            return HandoffRecord.from_json(text)
                        before = HandoffRecord.from_json(text)
                        record = HandoffRecord.from_json(text)
                        if not change(record):
                            return None
                        pipe.multi()
                        pipe.set(key, record.to_json())
                        pipe.set(done, "1", ex=OP_SECONDS)
                        extra(pipe, before, record)
                        await pipe.execute()
                        return record
                    except WatchError:
                        continue

        return await self.repeatable(attempt)

    async def escalate(self, case_id: str, reason: str) -> None:
        """Raise a case to P1 and the safeguarding team (a risk came up after the handoff)."""

        def change(record: HandoffRecord) -> bool:
            if record.priority == "P1" or record.status != "open":
                return False
            record.priority, record.team, record.reason = "P1", "safeguarding", reason
            return True

        def extra(pipe: Any, before: HandoffRecord, record: HandoffRecord) -> None:
            pipe.zrem(self._key("open", before.team), case_id)
            pipe.zadd(self._key("open"), {case_id: self.score(record)})
            pipe.zadd(self._key("open", record.team), {case_id: self.score(record)})
            pipe.xadd(
                self.events_key, self._event("escalated", case_id, record.team), **self._cap()
            )

        await self._update(case_id, change, extra)

    async def claim(self, case_id: str, agent: str, lease_seconds: float = 300) -> Claim | None:
        """Take a case for ``agent`` unless someone else holds it (atomic across processes).

        Claiming again as the same agent renews the lease. Returns None when another agent
        holds the case or it is not open.
        """
        lease_ms = max(1, int(lease_seconds * 1000))
        taken = await self._claim(
            keys=[self._key("open"), self._key("lease", case_id), self.events_key],
            args=[case_id, agent, lease_ms, _EVENTS_MAXLEN, self.clock().isoformat()],
        )
        if not taken:
            return None
        expires = datetime.fromtimestamp(self.clock().timestamp() + lease_seconds, UTC)
        return Claim(case_id, agent, expires)

    async def holder(self, case_id: str) -> str | None:
        """Return the agent holding a case, if any."""
        agent = await self.redis.get(self._key("lease", case_id))
        return str(agent) if agent else None

    async def holders(self, case_ids: list[str]) -> dict[str, str]:
        """Return the holders of several cases (cases nobody holds are left out)."""
        if not case_ids:
            return {}
        agents = await self.redis.mget([self._key("lease", c) for c in case_ids])
        return {c: str(a) for c, a in zip(case_ids, agents, strict=True) if a}

    async def release(self, case_id: str, agent: str) -> bool:
        """Give a held case back to the queue (only its holder can)."""
        released = await self._release(
            keys=[self._key("lease", case_id), self.events_key, op_key(self.namespace)],
            args=[case_id, agent, _EVENTS_MAXLEN, self.clock().isoformat(), OP_SECONDS],
        )
        return bool(released)

    async def reassign(self, case_id: str, team: str) -> bool:
        """Move an open case to another team's queue (its lease is dropped).

        Returns:
            False when the case is not open.
        """

        def change(record: HandoffRecord) -> bool:
            if record.status != "open":
                return False
            record.team = team
            return True

        def extra(pipe: Any, before: HandoffRecord, record: HandoffRecord) -> None:
            pipe.zrem(self._key("open", before.team), case_id)
            pipe.zadd(self._key("open", team), {case_id: self.score(record)})
            pipe.delete(self._key("lease", case_id))
            pipe.xadd(self.events_key, self._event("reassigned", case_id, team), **self._cap())

        return await self._update(case_id, change, extra) is not None

    async def add_note(self, case_id: str, agent: str, text: str) -> None:
        """Add an internal note (never sent to the resident)."""
        note = {"agent": agent, "text": text, "at": self.clock().isoformat()}
        await self._push_once(
            keys=[self._key("notes", case_id), op_key(self.namespace)],
            args=[json.dumps(note, ensure_ascii=False), OP_SECONDS],
        )

    async def notes(self, case_id: str) -> list[dict[str, Any]]:
        """Return a case's internal notes."""
        return [json.loads(n) for n in await self.redis.lrange(self._key("notes", case_id), 0, -1)]

    async def close(self, case_id: str, status: str, agent: str = "") -> bool:
        """End a case as ``resolved`` or ``returned_to_bot``; False if it was not open.

        Raises:
            ValueError: ``status`` is not a closed status.
        """
        if status not in CLOSED_STATUSES:
            raise ValueError(f"not a closed status: {status}")

        def change(record: HandoffRecord) -> bool:
            if record.status != "open":
                return False
            record.status = status
            return True

        def extra(pipe: Any, before: HandoffRecord, record: HandoffRecord) -> None:
            pipe.zrem(self._key("open"), case_id)
            pipe.zrem(self._key("open", record.team), case_id)
            pipe.delete(self._key("lease", case_id))
            pipe.delete(self._key("conversation", record.conversation_id))
            pipe.hset(
                self._key("meta", case_id),
                mapping={"closed_at": self.clock().isoformat(), "closed_by": agent},
            )
            pipe.xadd(self.events_key, self._event(status, case_id, record.team), **self._cap())

        return await self._update(case_id, change, extra) is not None

    async def resolve(self, case_id: str, agent: str = "") -> bool:
        """Close a case as answered by a person."""
        return await self.close(case_id, "resolved", agent)

    async def return_to_bot(self, case_id: str, agent: str = "") -> bool:
        """Close a case and let the bot answer the resident's next message."""
        return await self.close(case_id, "returned_to_bot", agent)

    async def list_open(
        self, team: str | None = None, offset: int = 0, limit: int = 50
    ) -> list[HandoffRecord]:
        """Open cases, most urgent first, for one team or all."""
        index = self._key("open", team) if team else self._key("open")
        ids = await self.redis.zrange(index, offset, offset + limit - 1)
        return await self.get_many(ids)

    async def list_open_for(
        self, teams: list[str], offset: int = 0, limit: int = 50
    ) -> list[HandoffRecord]:
        """Open cases of several teams merged in queue order (most urgent first), one page.

        ``offset`` skips that many of the most urgent cases; :meth:`count_open_for` gives the
        total to page through.
        """
        teams, start = list(dict.fromkeys(teams)), max(offset, 0)
        end = start + limit
        if not teams or limit <= 0:
            return []

        async def read() -> list[list[tuple[str, float]]]:
            async with self.redis.pipeline(transaction=False) as pipe:
                for team in teams:
                    pipe.zrange(self._key("open", team), 0, end - 1, withscores=True)
                found: list[list[tuple[str, float]]] = await pipe.execute()
            return found

        scored = sorted(
            (score, case_id) for found in await self.repeatable(read) for case_id, score in found
        )
        return await self.get_many([case_id for _, case_id in scored[start:end]])

    async def count_open_for(self, teams: list[str]) -> int:
        """How many cases the teams have open between them (the queue page's true total)."""
        if not teams:
            return 0

        async def read() -> list[int]:
            async with self.redis.pipeline(transaction=False) as pipe:
                for team in dict.fromkeys(teams):
                    pipe.zcard(self._key("open", team))
                counts: list[int] = await pipe.execute()
            return counts

        return sum(await self.repeatable(read))

    async def get_many(self, case_ids: list[str]) -> list[HandoffRecord]:
        """Records of several cases, in the order given (missing ones left out)."""
        if not case_ids:
            return []
        texts = await self.redis.mget([self._key("case", case_id) for case_id in case_ids])
        return [HandoffRecord.from_json(text) for text in texts if text]

    async def count_open(self, team: str | None = None) -> int:
        """How many cases are open (for one team or all)."""
        return int(await self.redis.zcard(self._key("open", team) if team else self._key("open")))

    async def earlier_cases(self, record: HandoffRecord, limit: int = 20) -> list[HandoffRecord]:
        """The resident's other cases, newest first, matched by channel id, phone or email."""
        ids: dict[str, float] = {}
        for contact in contact_keys(record):
            found = await self.redis.zrevrange(
                self._key("contact", contact), 0, limit - 1, withscores=True
            )
            ids.update({case_id: score for case_id, score in found if case_id != record.case_id})
        newest = sorted(ids, key=lambda c: ids[c], reverse=True)[:limit]
        return await self.get_many(newest)

    async def case_ids_between(self, start: datetime, end: datetime) -> list[str]:
        """Ids of the cases opened in ``[start, end)`` (oldest first)."""
        found: list[str] = await self.redis.zrangebyscore(
            self._key("cases"), start.timestamp() * 1000, f"({end.timestamp() * 1000}"
        )
        return found

    def _event(self, kind: str, case_id: str, detail: str) -> dict[str, str]:
        return {"kind": kind, "case_id": case_id, "detail": detail, "at": self.clock().isoformat()}

    @staticmethod
    def _cap() -> dict[str, Any]:
        return {"maxlen": _EVENTS_MAXLEN, "approximate": True}
