"""Finding 10: residents' personal data in reports.

The tester's report: the supervisors' "top unanswered questions" and the CSV/JSON exports
showed the names, addresses and postcodes residents had typed.

Now the question that opened an unanswered case is redacted before it is stored for
reporting (by the Rasa server's event broker), and cases stored before that are redacted when
the report reads them. The case itself keeps the full text for the agent handling it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis.asyncio

from bot.handoff.broker import HandoffEventBroker
from bot.handoff.questions import UnansweredQuestions
from bot.handoff.queue import HandoffQueue
from bot.handoff.record import HandoffRecord
from bot.testing.handoff import handoff_record

OPENED = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)
SAID = "Hi my name is Jo Bloggs, bins at 12 High Street AB1 2CD not taken, ring 07700 900123"
REDACTED = "Hi my name is [name], bins at [address] [postcode] not taken, ring [phone]"


def record(reason: str, sender: str = "447700900123", text: str = SAID) -> HandoffRecord:
    return handoff_record(
        sender,
        reason=reason,
        topic="nlu_fallback",
        team="customer_services",
        text=text,
        opened=OPENED,
    )


def user_event(case: HandoffRecord, at: datetime, text: str) -> dict[str, object]:
    return {
        "event": "user",
        "sender_id": case.conversation_id,
        "timestamp": at.timestamp(),
        "text": text,
    }


async def _stored_texts(client: redis.asyncio.Redis, namespace: str) -> list[str]:
    keys = [k async for k in client.scan_iter(match=f"{namespace}:stats:*")]
    values = []
    for name in keys:
        if await client.type(name) == "string":
            values.append(str(await client.get(name)))
    return values


async def test_the_unanswered_question_is_stored_redacted(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    queue = HandoffQueue(async_redis, namespace)
    broker = HandoffEventBroker(queue)
    case = record("low_confidence")
    await queue.open(case)
    # the message that opened the case reaches the broker once Rasa saves the tracker
    await broker.handle_user_message(user_event(case, OPENED - timedelta(seconds=1), SAID))
    later = "also my neighbour Mrs Patel at 14 High Street"
    await broker.handle_user_message(user_event(case, OPENED + timedelta(minutes=1), later))
    questions = UnansweredQuestions(async_redis, namespace)
    assert await questions.questions([case]) == [REDACTED]
    stored = await _stored_texts(async_redis, namespace)
    assert REDACTED in stored
    for private in ("Jo Bloggs", "High Street", "AB1 2CD", "07700", "Patel"):
        assert not any(private in text for text in stored)
    # the agent still sees what the resident wrote
    transcript = [m["text"] for m in await queue.transcript(case.case_id)]
    assert SAID in transcript and later in transcript


async def test_other_handoffs_keep_nothing_for_reports(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    queue = HandoffQueue(async_redis, namespace)
    broker = HandoffEventBroker(queue)
    case = record("safeguarding")
    await queue.open(case)
    await broker.handle_user_message(user_event(case, OPENED - timedelta(seconds=1), SAID))
    assert await UnansweredQuestions(async_redis, namespace).questions([case]) == []
    assert await async_redis.exists(f"{namespace}:stats:question:{case.case_id}") == 0


async def test_cases_from_before_are_redacted_when_read(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    old = record("out_of_scope", sender="447700900999")  # nothing stored for reports
    other = record("complaint", sender="447700900998")
    questions = UnansweredQuestions(async_redis, namespace)
    assert await questions.questions([old, other]) == [REDACTED]
