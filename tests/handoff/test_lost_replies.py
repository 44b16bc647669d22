"""Writes that Redis ran but whose reply was lost are retried without being applied twice.

The client (the project's settings) talks to the test Redis through a loopback proxy that
drops the connection right after Redis ran a command, before the reply arrives: the client
retries, and each write must still happen exactly once and report what it did.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import redis.asyncio

from bot.handoff.alerts import SafeguardingAlert, SafeguardingAlerts
from bot.handoff.broker import HandoffEventBroker
from bot.handoff.hours import OpeningHours
from bot.handoff.notify import Breach
from bot.handoff.queue import HandoffQueue
from bot.handoff.replies import OutboundReply, OutboxSender
from bot.handoff.sla import SlaMonitor, SlaPolicy
from bot.redis_conn import connect_async

from .conftest import Clock, make_record
from .redis_server import LostReplyProxy

HOURS = OpeningHours(holidays=frozenset({date(2027, 3, 8)}))


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[LostReplyProxy]:
    parts = urlsplit(redis_url)
    running = LostReplyProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    await running.start()
    yield running
    await running.close()


@pytest.fixture
async def lossy(proxy: LostReplyProxy) -> AsyncIterator[redis.asyncio.Redis]:
    """A client whose connection to Redis goes through the proxy."""
    client = await connect_async(proxy.url)
    yield client
    await client.close()


@pytest.fixture
def lossy_queue(lossy: redis.asyncio.Redis, namespace: str, handoff_clock: Clock) -> HandoffQueue:
    return HandoffQueue(lossy, namespace, clock=handoff_clock)


async def events(queue: HandoffQueue, redis_client: redis.asyncio.Redis) -> Counter[str]:
    return Counter(fields["kind"] for _, fields in await redis_client.xrange(queue.events_key))


async def test_queue_writes_happen_once(
    lossy_queue: HandoffQueue,
    queue: HandoffQueue,
    proxy: LostReplyProxy,
    async_redis: redis.asyncio.Redis,
) -> None:
    record = make_record("447700900001")
    proxy.lose_next_reply("EVALSHA")
    assert await lossy_queue.open(record) == record.case_id
    proxy.lose_next_reply("EVALSHA")
    assert await lossy_queue.claim(record.case_id, "amy") is not None
    proxy.lose_next_reply("EVALSHA")
    assert await lossy_queue.append_message(record.conversation_id, "agent", "hi") == record.case_id
    proxy.lose_next_reply("EVALSHA")
    await lossy_queue.add_note(record.case_id, "amy", "called back")
    proxy.lose_next_reply("EVALSHA")
    assert await lossy_queue.release(record.case_id, "amy")
    proxy.lose_next_reply("EXEC")
    assert await lossy_queue.reassign(record.case_id, "housing")
    proxy.lose_next_reply("EXEC")
    assert await lossy_queue.resolve(record.case_id, "amy")
    assert proxy.lost == 7  # every one of those replies was lost, and the write had run

    stored = await queue.get(record.case_id)
    assert stored is not None and stored.status == "resolved" and stored.team == "housing"
    assert [m["text"] for m in await queue.messages(record.case_id)] == ["hi"]
    assert [n["text"] for n in await queue.notes(record.case_id)] == ["called back"]
    assert (await queue.meta(record.case_id))["closed_by"] == "amy"
    assert await queue.holder(record.case_id) is None
    assert await events(queue, async_redis) == Counter(
        opened=1, claimed=1, message=1, released=1, reassigned=1, resolved=1
    )
    # the resident's contacts were indexed by the same step: the SMS number finds the case
    later = await queue.earlier_cases(make_record("447700900001", channel="sms"))
    assert [c.case_id for c in later] == [record.case_id]


async def test_a_second_case_is_not_opened_or_claimed(
    lossy_queue: HandoffQueue, queue: HandoffQueue, proxy: LostReplyProxy
) -> None:
    record = make_record("2")
    await lossy_queue.open(record)
    again = make_record("2", text="hello?")
    proxy.lose_next_reply("EVALSHA")
    assert await lossy_queue.open(again) == record.case_id
    assert await queue.count_open() == 1
    assert await queue.claim(record.case_id, "bob") is not None
    proxy.lose_next_reply("EVALSHA")
    assert await lossy_queue.claim(record.case_id, "amy") is None
    assert await queue.holder(record.case_id) == "bob"
    assert proxy.lost == 2


async def test_agent_reply_is_queued_once(
    lossy: redis.asyncio.Redis,
    namespace: str,
    proxy: LostReplyProxy,
    async_redis: redis.asyncio.Redis,
) -> None:
    sender = OutboxSender(lossy, namespace)
    proxy.lose_next_reply("EVALSHA")
    entry_id = await sender.send(OutboundReply.for_record(make_record("3"), "On our way"))
    assert proxy.lost == 1
    entries = await async_redis.xrange(f"{namespace}:outbox")
    assert [(i, fields["text"]) for i, fields in entries] == [(entry_id, "On our way")]


async def test_breach_notice_is_not_lost(
    lossy_queue: HandoffQueue, queue: HandoffQueue, proxy: LostReplyProxy, handoff_clock: Clock
) -> None:
    sent: list[Breach] = []

    async def notify(breach: Breach) -> None:
        sent.append(breach)

    await queue.open(make_record("4"))
    handoff_clock.advance(hours=3)
    monitor = SlaMonitor(lossy_queue, SlaPolicy(hours=HOURS), notify=notify, clock=handoff_clock)
    proxy.lose_next_reply("EVALSHA")
    assert [b.kind for b in await monitor.check()] == ["first_response"]
    assert proxy.lost == 1
    assert [b.kind for b in sent] == ["first_response"]
    assert await monitor.check() == []


async def test_safeguarding_alert_is_recorded_once(
    lossy: redis.asyncio.Redis, namespace: str, proxy: LostReplyProxy
) -> None:
    posted: list[Breach] = []

    async def hook(alert: Breach) -> None:
        posted.append(alert)
        proxy.lose_next_reply("EVALSHA")  # the reply recording the delivery

    night = datetime(2027, 3, 3, 23, 0, tzinfo=UTC)
    alerts = SafeguardingAlerts(lossy, namespace, hook=hook, clock=lambda: night)
    alert = SafeguardingAlert.for_record(
        make_record("5", reason="safeguarding", created_at=night.isoformat())
    )
    proxy.lose_next_reply("EVALSHA")  # the reply taking the alert
    assert await alerts.send(alert) == "sent"
    assert proxy.lost == 2
    assert len(posted) == 1
    assert await alerts.pending() == []
    assert await alerts.send(alert) == "already_sent"
    assert len(posted) == 1


async def test_conversation_counted_once(
    lossy_queue: HandoffQueue, proxy: LostReplyProxy, async_redis: redis.asyncio.Redis
) -> None:
    broker = HandoffEventBroker(lossy_queue)
    day = datetime(2027, 3, 1, 9, tzinfo=UTC)
    proxy.lose_next_reply("EVALSHA")
    await broker.count_conversation("telegram:councilbot:7", day)
    await broker.count_conversation("telegram:councilbot:7", day + timedelta(hours=2))
    assert proxy.lost == 1
    counter = f"{lossy_queue.namespace}:stats:conversations:2027-03-01"
    assert await async_redis.get(counter) == "1"
