"""Working through a Redis stream as one consumer of a group: what the inbox and outbox share.

A consumer takes back the entries it read before a restart (its own pending ones), the pending
entries of consumers that stopped beating (their heartbeat in ``{stream}:workers`` is older
than ``dead_after``), now and then entries any consumer left unacknowledged for
``claim_idle_ms`` (XAUTOCLAIM), and otherwise new entries. Entries it holds are re-claimed every
``claim_idle_ms / 3`` so that no live consumer's work is taken over while it waits out a retry.

Each conversation is worked on by a task of its own (:class:`Lanes`): its entries stay in
order, and one conversation's slow handler, failing send or ``Retry-After`` never delays
another's. A retry is scheduled, not awaited in line: the entry stays pending, its due time is
in the sorted set ``{stream}:due`` and its attempts in the hash ``{stream}:retries``, so a
restarted or another worker goes on with the same budget (:class:`Retries`). An entry read
as new has never failed, so its retry state is neither read nor cleared unless it fails.

The writes that finish entries (replies queued, acknowledgement, removal, delivery state) are
sent together (:class:`Batch`): the lanes that finish in one turn of the event loop share one
transaction, each entry's commands still all or nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import secrets
import socket
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio
from redis.exceptions import RedisError, ResponseError

from bot.keys import key

__all__ = [
    "Batch",
    "Entry",
    "Fields",
    "GroupReader",
    "Lanes",
    "Retries",
    "RetryPolicy",
    "RetryState",
    "StreamWorker",
    "consumer_name",
    "ensure_group",
    "raise_first_error",
    "until_saved",
]

_log = logging.getLogger(__name__)

Entry = tuple[str, dict[str, str] | None]
"""A stream id and its fields (None when the entry was deleted while pending)."""

Fields = dict[str, str]
"""The fields of a stream entry."""


def consumer_name() -> str:
    """This process' consumer name: host name, process id and a random suffix.

    Two server processes on one host (or a pid reused in a container) never share a name, so
    their pending entries are never mixed up; a restarted process' predecessor is taken over
    once its heartbeat stops (:meth:`GroupReader.take_over_dead`).
    """
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


async def ensure_group(client: redis.asyncio.Redis, stream: str, group: str) -> None:
    """Create ``stream`` and its consumer ``group`` if they do not exist."""
    try:
        await client.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def until_saved(write: Callable[[], Awaitable[Any]], what: str) -> None:
    """Run a Redis write, trying again every second while Redis is unreachable.

    Used for the write that finishes an entry: repeating it is safe, while giving up would
    repeat the work (a second reply to the resident).
    """
    while True:
        try:
            await write()
            return
        except RedisError:
            _log.exception("%s: Redis error; trying again in 1 s", what)
            await asyncio.sleep(1)


@dataclass(frozen=True)
class RetryPolicy:
    """When to try an entry again, and when to give up.

    Attributes:
        base_delay: First backoff in seconds (doubles each attempt, with jitter).
        max_delay: Longest backoff between attempts.
        give_up_after: Seconds after the first failure with no further attempt (a provider
            outage shorter than this is retried through).
        max_attempts: Attempts before giving up whatever the time (None: only the time).
        max_retry_after: Longest provider ``Retry-After`` honoured as asked.
        max_errors: Times the worker itself may raise on an entry before it is dead-lettered
            (a value that cannot be processed is not retried for minutes).
    """

    base_delay: float = 1.0
    max_delay: float = 60.0
    give_up_after: float = 600.0
    max_attempts: int | None = None
    max_retry_after: float = 300.0
    max_errors: int = 3

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        backoff = min(self.max_delay, self.base_delay * 2.0 ** min(attempt - 1, 64))
        return float(backoff * random.uniform(0.8, 1.0))  # noqa: S311 - jitter, not security

    def exhausted(self, state: RetryState, now: float) -> bool:
        """No attempt after the failures in ``state``."""
        if self.max_attempts is not None and state.attempts >= self.max_attempts:
            return True
        if state.errors >= self.max_errors:
            return True
        return now - state.first_failed_at >= self.give_up_after


@dataclass(frozen=True)
class RetryState:
    """The failures of one entry so far.

    Attributes:
        attempts: Failed attempts.
        first_failed_at: Unix seconds of the first failure.
        errors: Of those, attempts where the worker itself raised.
        due: Unix seconds of the next attempt (0: now).
    """

    attempts: int = 0
    first_failed_at: float = 0.0
    errors: int = 0
    due: float = 0.0

    def after_failure(self, now: float, *, error: bool = False) -> RetryState:
        """The state after one more failed attempt at ``now`` (due not yet scheduled)."""
        return RetryState(self.attempts + 1, self.first_failed_at or now, self.errors + int(error))


class Retries:
    """The retry schedule of a stream's entries, kept in Redis.

    Args:
        client: Asyncio Redis client (decoded strings).
        stream: The stream's key; the hash ``{stream}:retries`` holds each entry's failures and
            the sorted set ``{stream}:due`` its next attempt (health reports it).
    """

    def __init__(self, client: redis.asyncio.Redis, stream: str) -> None:
        self.redis = client
        self.state_key = key(stream, "retries")
        self.due_key = key(stream, "due")

    async def get(self, entry_id: str) -> RetryState:
        """The failures so far of an entry (none when it never failed)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(self.state_key, entry_id)
            pipe.zscore(self.due_key, entry_id)
            raw, due = await pipe.execute()
        if not raw:
            return RetryState()
        try:
            saved = json.loads(raw)
            return RetryState(
                int(saved["attempts"]), float(saved["first"]), int(saved["errors"]), float(due or 0)
            )
        except (KeyError, TypeError, ValueError):
            return RetryState()  # unreadable: start the budget again rather than fail

    async def failed(
        self, entry_id: str, state: RetryState, now: float, *, error: bool = False
    ) -> RetryState:
        """Record one more failed attempt; return the new state (due not yet scheduled)."""
        new = state.after_failure(now, error=error)
        await self.redis.hset(self.state_key, entry_id, self._saved(new))
        return new

    async def schedule(self, entry_id: str, due: float) -> None:
        """Record when an entry is tried next."""
        await self.redis.zadd(self.due_key, {entry_id: due})

    def retry_at(self, pipe: Any, entry_id: str, state: RetryState, due: float) -> None:
        """Add an entry's failures and its next attempt to a pipeline.

        A worker hands it to its :class:`Batch`: the retries and finishes of every lane in one
        turn of the event loop share one round trip.
        """
        pipe.hset(self.state_key, entry_id, self._saved(state))
        pipe.zadd(self.due_key, {entry_id: due})

    @staticmethod
    def _saved(state: RetryState) -> str:
        return json.dumps(
            {"attempts": state.attempts, "first": state.first_failed_at, "errors": state.errors}
        )

    def forget(self, pipe: Any, entry_id: str) -> None:
        """Add the removal of an entry's schedule to a pipeline that finishes it."""
        pipe.hdel(self.state_key, entry_id)
        pipe.zrem(self.due_key, entry_id)


# KEYS: stream. ARGV: group, stopped consumer, this consumer, count.
_TAKE_OVER = """
local rows = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', ARGV[4], ARGV[2])
if #rows == 0 then return {} end
local ids = {}
for i, row in ipairs(rows) do ids[i] = row[1] end
return redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, unpack(ids))
"""

# KEYS: stream. ARGV: group, this consumer, then the ids it holds.
_KEEP_ALIVE = """
local args = {KEYS[1], ARGV[1], ARGV[2], 0}
for i = 3, #ARGV do
  if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2]) > 0 then
    args[#args + 1] = ARGV[i]
  end
end
if #args == 4 then return 0 end
args[#args + 1] = 'JUSTID'
return #redis.call('XCLAIM', unpack(args))
"""


def _pairs(flat: Sequence[str] | None) -> Fields | None:
    if flat is None:  # deleted while pending
        return None
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}


class GroupReader:
    """One consumer's reads of a stream through a consumer group.

    Args:
        client: Asyncio Redis client (decoded strings).
        stream: The stream's key.
        group: The consumer group.
        consumer: This consumer's name (:func:`consumer_name`).
        claim_idle_ms: Entries any consumer left unacknowledged this long are taken over
            (looked for every ``claim_idle_ms / 4``); held entries are re-claimed every
            ``claim_idle_ms / 3`` so they never look idle that long.
        block_ms: How long one read waits for new entries.
        batch: Entries read at a time.
        dead_after: Seconds without a heartbeat after which a consumer's pending entries are
            taken over and, once it has none, the consumer is deleted from the group.
        beat_every: Seconds between heartbeats.
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
        dead_after: float = 30.0,
        beat_every: float = 2.0,
    ) -> None:
        self.redis = client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        self.block_ms = block_ms
        self.batch = batch
        self.dead_after = dead_after
        self.beat_every = beat_every
        self.heartbeats = key(stream, "workers")
        self._take_over = client.register_script(_TAKE_OVER)
        self._keep_alive = client.register_script(_KEEP_ALIVE)
        self._own_from: str | None = "0"  # where reading own pending entries goes on (None: done)
        self._next_claim = 0.0  # time.monotonic() of the next look for stale entries
        self._claim_from = "0-0"  # where the look goes on while more remain
        self._next_beat = 0.0
        self._next_reap = 0.0
        self._next_keep_alive = 0.0

    async def ensure_group(self) -> None:
        """Create the stream and the group if they do not exist."""
        await ensure_group(self.redis, self.stream, self.group)

    def rewind(self) -> None:
        """Read this consumer's own pending entries again, from the start."""
        self._own_from = "0"

    async def backlog(self) -> list[Entry]:
        """Own pending entries (after a start), those of dead consumers, and stale ones."""
        entries: list[Entry] = []
        if self._own_from is not None:
            # entries this consumer read before a restart, a batch at a time
            entries += await self._read(self._own_from, block=False)
            self._own_from = entries[-1][0] if len(entries) == self.batch else None
        return entries + await self.take_over_dead() + await self._claim()

    async def new(self, block: bool = True) -> list[Entry]:
        """Entries no consumer has read yet (waiting up to ``block_ms`` when ``block``)."""
        return await self._read(">", block=block)

    async def ack(self, entry_ids: Sequence[str]) -> None:
        """Acknowledge entries with nothing left to do."""
        if entry_ids:
            await self.redis.xack(self.stream, self.group, *entry_ids)

    async def beat(self) -> None:
        """Record that this consumer is alive (at most every ``beat_every`` seconds)."""
        if time.monotonic() >= self._next_beat:
            await self.redis.zadd(self.heartbeats, {self.consumer: time.time()})
            self._next_beat = time.monotonic() + self.beat_every

    async def keep_alive(self, held: Iterable[str]) -> None:
        """Reset the idle time of held entries so no other consumer takes them over.

        Only entries still pending for this consumer: one taken over while this consumer was
        silent stays with the consumer that took it.
        """
        if time.monotonic() < self._next_keep_alive:
            return
        self._next_keep_alive = time.monotonic() + self.claim_idle_ms / 3000
        ids = list(held)
        for start in range(0, len(ids), 500):
            await self._keep_alive(
                keys=[self.stream], args=[self.group, self.consumer, *ids[start : start + 500]]
            )

    async def take_over_dead(self) -> list[Entry]:
        """Claim the pending entries of consumers whose heartbeat stopped; delete empty ones.

        A consumer that never beat (an older version) counts as dead once Redis has not heard
        from it for ``claim_idle_ms``. Looked at every ``dead_after / 4`` seconds.
        """
        if time.monotonic() < self._next_reap:
            return []
        self._next_reap = time.monotonic() + self.dead_after / 4
        consumers: Any = await self.redis.xinfo_consumers(self.stream, self.group)
        beats = dict(await self.redis.zrange(self.heartbeats, 0, -1, withscores=True))
        now = time.time()
        taken: list[Entry] = []
        for consumer in consumers:
            name = str(consumer["name"])
            if name == self.consumer:
                continue
            beat = beats.get(name)
            if beat is None:
                dead = int(consumer["idle"]) >= self.claim_idle_ms
            else:
                dead = now - float(beat) >= self.dead_after
            if not dead:
                continue
            if int(consumer["pending"]):
                taken += await self._claim_from_consumer(name)
            else:
                await self.redis.xgroup_delconsumer(self.stream, self.group, name)
                await self.redis.zrem(self.heartbeats, name)
                _log.info("%s: removed stopped consumer %s", self.stream, name)
        return taken

    async def leave(self) -> None:
        """On a clean stop: leave the group, or let others take over what is still pending."""
        summary: Any = await self.redis.xpending_range(
            self.stream, self.group, "-", "+", 1, consumername=self.consumer
        )
        if summary:
            await self.redis.zadd(self.heartbeats, {self.consumer: 0})  # dead at once
        else:
            await self.redis.xgroup_delconsumer(self.stream, self.group, self.consumer)
            await self.redis.zrem(self.heartbeats, self.consumer)

    async def _claim_from_consumer(self, name: str) -> list[Entry]:
        # listing and claiming in one script: when two consumers take over at once, each
        # entry goes to one of them
        claimed: Any = await self._take_over(
            keys=[self.stream], args=[self.group, name, self.consumer, self.batch]
        )
        entries: list[Entry] = [
            (str(entry_id), _pairs(fields)) for entry_id, fields in claimed or ()
        ]
        _log.warning(
            "%s: consumer %s stopped; took over %d pending entries", self.stream, name, len(entries)
        )
        return entries

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


Commands = Callable[[Any], None]
"""Adds one entry's commands to a pipeline."""


class Batch:
    """Writes of many lanes sent together: one transaction per turn of the event loop.

    Each lane hands its commands to :meth:`write` and waits; what was handed in while the
    previous transaction was on its way goes in the next one. A transaction runs every
    command, so each entry's commands are all or nothing as if sent alone.

    Args:
        client: Asyncio Redis client (decoded strings).
    """

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.redis = client
        self._waiting: list[tuple[Commands, asyncio.Future[list[Any]]]] = []
        self._sending: asyncio.Task[None] | None = None

    async def write(self, commands: Commands) -> list[Any]:
        """Send ``commands`` in the next transaction; return their results.

        A command's error is returned in its place (the caller decides what it means).

        Raises:
            redis.RedisError: The transaction failed as a whole (none of its commands ran,
                or Redis stopped answering).
        """
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((commands, future))
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send(), name="stream batch")
        return await future

    async def _send(self) -> None:
        await asyncio.sleep(0)  # lanes finishing in this turn of the loop join in
        while self._waiting:
            waiting, self._waiting = self._waiting, []
            spans = []
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    for commands, _ in waiting:
                        start = len(pipe.command_stack)
                        commands(pipe)
                        spans.append((start, len(pipe.command_stack)))
                    results = await pipe.execute(raise_on_error=False)
            except Exception as exc:  # every writer learns it and tries again on its own
                for _, future in waiting:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (start, end), (_, future) in zip(spans, waiting, strict=True):
                if not future.done():  # a lane closed meanwhile
                    future.set_result(list(results[start:end]))


def raise_first_error(results: Sequence[Any]) -> None:
    """Raise the first error among a pipeline's results, if any."""
    for result in results:
        if isinstance(result, Exception):
            raise result


Work = Callable[[str, Fields], Awaitable[None]]
"""Finishes one entry (acknowledges it); raises only on a bug."""


class Lanes:
    """One task per conversation: its entries in order, conversations independent.

    Args:
        work: Runs one entry to its end.
        field: The field naming an entry's conversation.
        limit: Entries held at most before the worker stops reading (:meth:`room`).
    """

    def __init__(self, work: Work, field: str, *, limit: int = 1000) -> None:
        self.work = work
        self.field = field
        self.limit = limit
        self._queues: dict[str, deque[tuple[str, Fields]]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._held: set[str] = set()
        self._room = asyncio.Event()

    def held(self) -> list[str]:
        """Ids of the entries read and not yet finished."""
        return list(self._held)

    async def room(self, timeout: float) -> bool:
        """Whether fewer than ``limit`` entries are held, waiting up to ``timeout`` for it."""
        if len(self._held) < self.limit:
            return True
        self._room.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._room.wait(), timeout)
        return len(self._held) < self.limit

    async def put(self, entries: Sequence[Entry]) -> list[str]:
        """Queue entries on their conversations' lanes (skipping those already held).

        Returns:
            Ids of entries deleted while pending (nothing to do but acknowledge them).
        """
        deleted = []
        for entry_id, fields in entries:
            if entry_id in self._held:
                continue  # taken back by a claim while its lane still has it
            if not fields:
                deleted.append(entry_id)
                continue
            lane = fields.get(self.field) or entry_id
            self._held.add(entry_id)
            self._queues.setdefault(lane, deque()).append((entry_id, fields))
            if lane not in self._tasks:
                self._tasks[lane] = asyncio.create_task(self._run(lane), name=f"lane {lane}")
        return deleted

    async def drain(self) -> None:
        """Wait until every lane is idle."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def close(self) -> None:
        """Stop every lane (their entries stay pending in Redis)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # a lane cancelled before it ever ran did not clean up after itself
        self._queues.clear()
        self._tasks.clear()
        self._held.clear()

    async def _run(self, lane: str) -> None:
        queue = self._queues[lane]
        try:
            while queue:
                entry_id, fields = queue[0]
                await self.work(entry_id, fields)
                queue.popleft()
                self._held.discard(entry_id)
                self._room.set()
        except Exception:
            # a bug, not a bad entry (work dead-letters those): the lane's entries stay
            # pending and are claimed again after claim_idle_ms, still in order
            _log.exception("lane %s stopped; its entries are taken up again later", lane)
        finally:
            for entry_id, _ in queue:
                self._held.discard(entry_id)
            self._room.set()
            del self._queues[lane]
            del self._tasks[lane]


class StreamWorker(ABC):
    """Reads a stream as one consumer and works each conversation in a lane of its own.

    Args:
        reader: The consumer's reads.
        field: The field naming an entry's conversation.
        max_in_flight: Entries held at most (reading pauses beyond it).
    """

    role = "stream"
    """The worker's name in logs and health (``inbox`` or ``outbox``)."""

    def __init__(self, reader: GroupReader, field: str, *, max_in_flight: int = 1000) -> None:
        self.reader = reader
        self.lanes = Lanes(self._work, field, limit=max_in_flight)
        self.retries = Retries(reader.redis, reader.stream)
        self.batch = Batch(reader.redis)
        self.finished = 0
        self._fresh: set[str] = set()  # held entries read as new: they never failed

    async def retry_state(self, entry_id: str) -> RetryState:
        """An entry's failures so far (read from Redis only for an entry read before)."""
        if entry_id in self._fresh:
            return RetryState()
        return await self.retries.get(entry_id)

    def forget_retries(self, pipe: Any, entry_id: str, state: RetryState) -> None:
        """Add the removal of an entry's retry state to its finish, when it may have one."""
        if state.attempts or entry_id not in self._fresh:
            self.retries.forget(pipe, entry_id)

    @abstractmethod
    async def process(self, entry_id: str, fields: Fields) -> None:
        """Take one entry to its end (done, dead-lettered or failed) and acknowledge it."""

    async def ensure_group(self) -> None:
        """Create the stream and its consumer group if they do not exist."""
        await self.reader.ensure_group()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; Redis errors are logged and retried."""
        await self.ensure_group()
        self.reader.rewind()  # after a restart, the entries the lanes held come first again
        try:
            while not stop.is_set():
                try:
                    await self.step()
                except RedisError:
                    _log.exception("%s worker: Redis error; retrying in 1 s", self.role)
                    await asyncio.sleep(1)
        finally:
            await self.lanes.close()
            self._fresh.clear()  # read again from the backlog after a restart
            if stop.is_set():
                try:
                    await self.reader.leave()
                except RedisError:
                    _log.warning("%s worker: could not leave the group cleanly", self.role)

    async def step(self, block: bool = True) -> int:
        """Beat, then hand the next entries to their lanes (without waiting for them)."""
        await self.reader.beat()
        await self.reader.keep_alive(self.lanes.held())
        if not await self.lanes.room(timeout=self.reader.beat_every):
            return 0  # full: beat again, read later
        entries = await self.reader.backlog()
        if entries:  # read before, maybe failed before: their retry state counts
            self._fresh.difference_update(entry_id for entry_id, _ in entries)
        else:
            entries = await self.reader.new(block)
            self._fresh.update(entry_id for entry_id, _ in entries)
        await self.reader.ack(await self.lanes.put(entries))
        return len(entries)

    async def run_once(self, block: bool = True) -> int:
        """Read once and wait until every lane is idle; return the entries finished."""
        before = self.finished
        await self.step(block)
        await self.lanes.drain()
        return self.finished - before

    async def _work(self, entry_id: str, fields: Fields) -> None:
        while True:
            try:
                await self.process(entry_id, fields)
                break
            except RedisError:
                # nothing was finished: the entry is taken up again once Redis answers
                _log.exception("%s worker: Redis error on %s; again in 1 s", self.role, entry_id)
                await asyncio.sleep(1)
        self._fresh.discard(entry_id)
        self.finished += 1
