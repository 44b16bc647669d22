"""Routine questions answered by the real assistant: bin days and knowledge-base answers.

Runs under any council profile (``--profile``): bins are named as the profile names them, and
knowledge-base answers are expected as the shipped content words them.
"""

import re
import time

import pytest

from bot.knowledge.content import load_entries
from bot.profile import current
from bot.testing.assistant import Assistant, Conversation
from bot.testing.live import current_answer, publish_answer, wait_for_answer

pytestmark = pytest.mark.e2e


def _content_link(entry_id: str) -> str:
    """The first web address of a knowledge-base entry's default answer, as published."""
    [entry] = [e for e in load_entries() if e.id == entry_id]
    found = re.search(r"https://\S+?(?=[,.]?(?:\s|$))", entry.answers["default"])
    assert found, f"{entry_id} has no link"
    return found.group(0)


def test_bin_day_asks_for_a_postcode_then_answers(chat: Conversation) -> None:
    assert "postcode" in chat.texts("when is my bin day?").lower()
    answer = chat.texts("AV5 1QA")
    assert current().bins["general"].label in answer
    assert ".ics" in answer


def test_bin_day_offers_numbered_addresses(chat: Conversation) -> None:
    replies = chat.say("when do the bins go out at AV1 2BX")
    texts = "\n".join(reply.text for reply in replies)
    choices = [button["title"] for reply in replies for button in reply.buttons]
    assert "4 Mill Lane" in choices and "Mill Lane" not in texts  # each address shown once
    answer = chat.texts("2")
    assert "4 Mill Lane" in answer or "bin" in answer


def test_malformed_postcode_is_asked_again(chat: Conversation) -> None:
    chat.say("bin day please")
    assert "postcode" in chat.texts("ZZ99 9ZZZ").lower()


def test_routine_question_answered_from_the_knowledge_base(chat: Conversation) -> None:
    answer = chat.texts("how do I pay my council tax online")
    assert _content_link("council-tax-pay-online") in answer
    assert "a person" not in answer.lower()


def test_published_edit_is_live_within_five_seconds(assistant: Assistant) -> None:
    question = "how do I pay my council tax online"
    entry = "council-tax-pay-online"
    original = current_answer(assistant.redis_url, assistant.namespace, entry)
    marker = f"Updated answer {time.time_ns()}: pay at {current().website}/pay-online"
    since = publish_answer(assistant.redis_url, assistant.namespace, entry, marker)
    try:
        seconds = wait_for_answer(
            lambda text: assistant.conversation().texts(text), question, marker, since=since
        )
        assert seconds <= 5.0
    finally:
        # the assistant is shared by the session: later tests expect the shipped answer
        since = publish_answer(assistant.redis_url, assistant.namespace, entry, original)
        wait_for_answer(
            lambda text: assistant.conversation().texts(text), question, original, since=since
        )
