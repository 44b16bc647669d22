"""The handoff queue against a real Redis that is restarted in the middle of the work.

Residents open cases and agents claim, note, reply and resolve them concurrently through one
HandoffQueue (one asyncio client, as in a console or action server process). Part-way through,
the private Redis server is stopped (SHUTDOWN, or SIGKILL) and started again on the same port
and data; the same client and queue objects carry on. Afterwards every case must be there and
resolved by the one agent who claimed it, and every write must have happened exactly once
(messages, notes and the queue's event stream are counted).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis.asyncio

from bot.handoff.queue import HandoffQueue
from bot.redis_conn import connect_async

from .conftest import make_record
from .redis_server import RedisServer

NAMESPACE = "{restart}"  # its own hash tag (bot.keys.tagged), as the stores write it
BEFORE = 120  # cases opened before and during the restart
AFTER = 60  # cases opened once the server is back
AGENTS = 6
RESTART_AFTER_RESOLVED = 40


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    running = RedisServer(tmp_path)
    running.start()
    yield running
    running.stop()


@pytest.fixture
async def client(server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    connected = await connect_async(server.url)  # the project's settings (retry policy)
    yield connected
    await connected.close()


@dataclass
class Work:
    """What the residents and agents did, as they saw it."""

    opened: dict[str, str] = field(default_factory=dict)  # case id -> conversation id
    joined: int = 0
    resident_messages: Counter[str] = field(default_factory=Counter)
    claims: list[tuple[str, str]] = field(default_factory=list)  # (case id, agent)
    resolved: dict[str, str] = field(default_factory=dict)  # case id -> agent
    restarted: asyncio.Event = field(default_factory=asyncio.Event)
    opening_done: asyncio.Event = field(default_factory=asyncio.Event)
    opened_after: int = 0
    claimed_after: int = 0
    resolved_after: int = 0
    downtime: float = 0.0


async def resident(queue: HandoffQueue, work: Work, number: int) -> None:
    """Open a case; every fifth resident writes again (joins the open case)."""
    sender = f"4477009{number:05d}"
    record = make_record(sender, minutes=number / 100, text=f"help please {number}")
    case_id = await queue.open(record)
    assert case_id == record.case_id  # each resident is new
    work.opened[case_id] = record.conversation_id
    work.opened_after += work.restarted.is_set()
    if number % 5 == 0:
        again = make_record(sender, minutes=number / 100 + 1, text=f"still waiting {number}")
        assert await queue.open(again) == case_id  # joined, not a second case
        work.joined += 1
        work.resident_messages[case_id] += 1


async def residents(queue: HandoffQueue, work: Work) -> None:
    """Open BEFORE cases (through the restart), then AFTER more once Redis is back."""
    numbers = iter(range(BEFORE + AFTER))
    for _ in range(BEFORE // 4):
        await asyncio.gather(*(resident(queue, work, next(numbers)) for _ in range(4)))
        await asyncio.sleep(0.01)
    await work.restarted.wait()
    for _ in range(AFTER // 4):
        await asyncio.gather(*(resident(queue, work, next(numbers)) for _ in range(4)))
    work.opening_done.set()


async def agent(queue: HandoffQueue, work: Work, name: str) -> None:
    """Take the most urgent cases one by one: claim, note, reply, resolve."""
    rng = random.Random(name)
    while True:
        cases = await queue.list_open(limit=AGENTS * 2)
        if not cases:
            if work.opening_done.is_set() and await queue.count_open() == 0:
                return
            await asyncio.sleep(0.005)
            continue
        record = rng.choice(cases)
        claim = await queue.claim(record.case_id, name, lease_seconds=600)
        if claim is None:
            continue  # another agent holds it, or it was just resolved
        work.claims.append((record.case_id, name))
        work.claimed_after += work.restarted.is_set()
        await queue.add_note(record.case_id, name, f"note by {name}")
        replied = await queue.append_message(record.conversation_id, "agent", f"reply by {name}")
        assert replied == record.case_id
        assert await queue.resolve(record.case_id, name), f"{name} could not resolve its case"
        work.resolved[record.case_id] = name
        work.resolved_after += work.restarted.is_set()


async def restart(server: RedisServer, work: Work, how: str) -> None:
    """Stop Redis once agents are well into the work, then start it again (in a thread, so
    the clients keep working, and failing, while it is down)."""
    while len(work.resolved) < RESTART_AFTER_RESOLVED:
        await asyncio.sleep(0.005)
    started = time.monotonic()
    await asyncio.to_thread(server.kill if how == "kill" else server.shutdown)
    await asyncio.sleep(0.3)  # down for a while: commands sent now must wait and retry
    await asyncio.to_thread(server.start)
    work.downtime = time.monotonic() - started
    work.restarted.set()


@pytest.mark.parametrize("how", ["shutdown", "kill"])
async def test_nothing_is_lost_across_a_redis_restart(
    server: RedisServer, client: redis.asyncio.Redis, how: str
) -> None:
    queue = HandoffQueue(client, NAMESPACE)
    first_run = (await client.info("server"))["run_id"]
    work = Work()
    await asyncio.wait_for(
        asyncio.gather(
            residents(queue, work),
            restart(server, work, how),
            *(agent(queue, work, f"agent{n}") for n in range(AGENTS)),
        ),
        timeout=120,
    )

    # The same client now talks to a new server process, which loaded the data from disk.
    assert (await client.info("server"))["run_id"] != first_run
    assert work.downtime >= 0.3

    # Every case is there, resolved by the one agent who claimed it.
    assert len(work.opened) == BEFORE + AFTER
    claimed = Counter(case_id for case_id, _ in work.claims)
    assert set(claimed) == set(work.opened)
    assert set(claimed.values()) == {1}, "a case was claimed by two agents"
    assert work.resolved == dict(work.claims)
    records = await queue.get_many(list(work.opened))
    assert len(records) == len(work.opened)
    assert {r.status for r in records} == {"resolved"}
    for record, meta in zip(records, await queue.metas(list(work.opened)), strict=True):
        assert meta["closed_by"] == work.resolved[record.case_id]
        assert "first_response_at" in meta
        assert record.conversation_id == work.opened[record.case_id]
        assert await queue.case_for(record.conversation_id) is None
    assert await queue.count_open() == 0
    assert await client.zcard(f"{NAMESPACE}:handoff:cases") == BEFORE + AFTER
    assert await client.keys(f"{NAMESPACE}:handoff:lease:*") == []

    # Every write happened exactly once, retries included.
    for case_id in work.opened:
        messages = await queue.messages(case_id)
        roles = Counter(m["role"] for m in messages)
        assert roles == Counter(resident=work.resident_messages[case_id], agent=1), case_id
        assert len(await queue.notes(case_id)) == 1
    events = Counter(fields["kind"] for _, fields in await client.xrange(queue.events_key))
    cases = BEFORE + AFTER
    assert events == Counter(
        opened=cases, claimed=cases, resolved=cases, message=cases + work.joined
    )

    # Work went on after the restart, with the same client and queue.
    assert work.opened_after >= AFTER
    assert work.claimed_after > 0 and work.resolved_after > 0
