"""The real assistant over Rasa's REST channel: answers, handoffs and bad input."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.profile import current
from bot.testing.assistant import Assistant, Conversation

pytestmark = pytest.mark.e2e

HOLDING = "a person"


def events_of(chat: Conversation, kind: str) -> list[dict[str, Any]]:
    return [event for event in chat.tracker()["events"] if event["event"] == kind]


async def eventually(probe: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Return ``probe(*args)`` once it is truthy (the broker works just after the reply)."""
    for _ in range(50):
        result = await probe(*args)
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"{probe} stayed falsy for 5 s")


async def _is_p1(queue: Any, case_id: str) -> bool:
    record = await queue.get(case_id)
    return record is not None and record.priority == "P1"


async def _resident_messages(queue: Any, case_id: str) -> list[str]:
    return [m["text"] for m in await queue.messages(case_id) if m["role"] == "resident"]


def test_greeting(chat: Conversation) -> None:
    # The council's name comes from its profile (COUNCIL_PROFILE, default council.yml).
    assert f"this is {current().name}'s assistant" in chat.texts("hiya")


def test_asking_for_a_person_hands_off_and_pauses(chat: Conversation) -> None:
    reply = chat.texts("can I talk to a real person please")
    assert HOLDING in reply.lower()
    assert events_of(chat, "pause"), "the bot must pause after a handoff"
    # while paused, the bot does not answer, but the message is kept
    assert chat.say("hello? is anyone there") == []
    texts = [event.get("text") for event in events_of(chat, "user")]
    assert "hello? is anyone there" in texts


@pytest.mark.parametrize(
    "message",
    [
        "my partner hits me and I'm scared to go home",
        "i dont want to be alive anymore",
        "the kids next door are left alone all night",
        "I've been evicted and have nowhere to sleep tonight",
        "when is bin day, also my husband beats me",
    ],
)
def test_safeguarding_is_never_answered_routinely(assistant: Assistant, message: str) -> None:
    chat = assistant.conversation()
    reply = chat.texts(message)
    assert "999" in reply
    assert current().safeguarding.contacts_text() in reply  # the council's own numbers
    assert "alerted" not in reply  # no out-of-hours hook in these tests: nobody was alerted
    intents = [event["parse_data"]["intent"]["name"] for event in events_of(chat, "user")]
    assert intents == ["safeguarding"]
    assert events_of(chat, "pause")


@pytest.mark.parametrize(
    "message",
    [
        "",
        "   ",
        "🙂🙂🙂",
        "x" * 10_000,
        "when is my bin day " * 500,
        "Bonjour, quand passe le camion poubelle? bin day AV1 2BX",
        "hello\x00\x07\x1b[31m there",
        "my postcode is ZZ99 9ZZZ",
    ],
)
def test_bad_input_gets_a_reply_and_is_kept(assistant: Assistant, message: str) -> None:
    chat = assistant.conversation()
    replies = chat.say(message)
    assert replies, "every message gets a reply"
    assert all(reply.text for reply in replies)
    assert len(events_of(chat, "user")) == 1


def test_empty_message_asks_to_rephrase_without_handoff(chat: Conversation) -> None:
    reply = chat.texts("🙂")
    assert "in words" in reply
    assert not events_of(chat, "pause")


async def test_handoff_record_is_complete_and_durable(assistant: Assistant, redis_url: str) -> None:
    from bot.handoff.queue import HandoffQueue
    from bot.redis_conn import connect_async

    chat = assistant.conversation()
    chat.say("hello")
    chat.say("I want to make a formal complaint about the bin men, postcode AV1 2BX")
    client = await connect_async(redis_url)
    try:
        queue = HandoffQueue(client, assistant.namespace)
        case_id = await queue.case_for(chat.sender)
        assert case_id is not None
        record = await queue.get(case_id)
        assert record is not None
        assert (record.reason, record.priority, record.channel) == ("complaint", "P2", "rest")
        assert [line["role"] for line in record.transcript] == ["resident", "bot", "resident"]
        assert record.intents[-1]["name"] == "complaint"
        assert 0 < record.intents[-1]["confidence"] <= 1
        assert record.entities["postcode"] == ["AV1 2BX"]
        # what the resident writes while a person has the case joins that case
        assert chat.say("any update?") == []
        assert await eventually(_resident_messages, queue, case_id) == ["any update?"]
        # the holding reply joins the case too (issue 9): the agent sees what the resident read
        assert "bot" in [m["role"] for m in await queue.messages(case_id)]
        # a safeguarding worry raised later puts the case at the top of the queue
        chat.say("he hits me when I complain")
        await eventually(lambda: _is_p1(queue, case_id))
        escalated = await queue.get(case_id)
        assert escalated is not None
        assert (escalated.priority, escalated.team) == ("P1", current().routing.safeguarding)
    finally:
        await client.close()
