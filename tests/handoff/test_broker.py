from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis.asyncio

from bot.handoff.broker import HandoffEventBroker
from bot.handoff.queue import HandoffQueue

from .conftest import make_record


def _event(sender: str, at: datetime, text: str = "hello") -> dict[str, object]:
    return {"event": "user", "sender_id": sender, "timestamp": at.timestamp(), "text": text}


async def test_each_resident_counts_once_a_day(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    broker = HandoffEventBroker(HandoffQueue(async_redis, namespace))
    monday = datetime(2027, 3, 1, 9, tzinfo=UTC)
    tuesday = datetime(2027, 3, 2, 9, tzinfo=UTC)
    for event in [
        _event("telegram:councilbot:1", monday),
        _event("telegram:councilbot:1", monday.replace(hour=15)),
        _event("whatsapp:+441234:+447700900123", monday),
        _event("telegram:councilbot:1", tuesday),
    ]:
        await broker.handle_user_message(event)
    counts = await async_redis.mget(
        f"{namespace}:stats:conversations:2027-03-01", f"{namespace}:stats:conversations:2027-03-02"
    )
    assert counts == ["2", "1"]
    # The per-resident markers expire; the anonymous counts are kept for reporting.
    marker = f"{namespace}:stats:seen:2027-03-01:telegram:councilbot:1"
    assert 0 < await async_redis.ttl(marker) <= 2 * 24 * 3600
    assert await async_redis.ttl(f"{namespace}:stats:conversations:2027-03-01") > 365 * 24 * 3600


async def test_the_holding_reply_and_later_messages_join_the_case(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    # Issue 9: the case page left out the bot's holding reply, so the agent could not see what
    # the resident had been told. The tracker store publishes it as a "bot" event.
    queue = HandoffQueue(async_redis, namespace)
    broker = HandoffEventBroker(queue)
    opened = datetime(2027, 3, 3, 10, tzinfo=UTC)
    record = make_record("1", minutes=0, text="I want to complain")
    case_id = await queue.open(record)
    before = opened - timedelta(seconds=5)
    holding = "Thanks. A member of the team will reply by 10:30 today."
    for event in [
        {
            "event": "bot",
            "sender_id": record.conversation_id,
            "timestamp": before.timestamp(),
            "text": "Sorry, I did not get that.",
        },  # before the handoff: already in the transcript
        {
            "event": "bot",
            "sender_id": record.conversation_id,
            "timestamp": (opened + timedelta(seconds=1)).timestamp(),
            "text": holding,
        },
        _event(record.conversation_id, opened + timedelta(minutes=2), "hello?"),
        {
            "event": "action",
            "sender_id": record.conversation_id,
            "timestamp": (opened + timedelta(minutes=3)).timestamp(),
            "name": "action_listen",
        },
        {
            "event": "bot",
            "sender_id": "whatsapp:+441234:+447700900999",
            "timestamp": (opened + timedelta(minutes=3)).timestamp(),
            "text": "no case here",
        },
    ]:
        broker.publish(event)
        await broker.flush()  # one at a time, as they arrive seconds apart
    said = [(m["role"], m["text"]) for m in await queue.transcript(case_id)]
    assert said == [("resident", "I want to complain"), ("bot", holding), ("resident", "hello?")]
