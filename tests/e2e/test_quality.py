"""Never a wrong answer (issue 13): the running assistant on questions it was never shown.

Out-of-scope questions near the council's topics (``tests/data/quality/out_of_scope.yml``,
held out: none is a training example) must be handed to a person or get a clarifying question,
never a knowledge-base entry; the demo council's test conversations
(``responses/knowledge/gate/``) must still get the entries they expect. A clarifying question's
topics are buttons: a tapped topic, or its number typed right after the question, is answered
and kept for editors' review; "something else" hands off.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.handoff.queue import HandoffQueue
from bot.knowledge.content import load_entries
from bot.knowledge.gate import DEFAULT_CONVERSATIONS, NO_ENTRY, load_conversations
from bot.knowledge.review import ReviewQueue
from bot.profile import current
from bot.redis_conn import connect_async
from bot.services import ROOT
from bot.testing.assistant import Assistant, Conversation

QUALITY = ROOT / "tests" / "data" / "quality" / "out_of_scope.yml"
_ANNOTATION = re.compile(r"\[([^\]]+)\]\([^)]*\)|\[([^\]]+)\]\{[^}]*\}")


def _normal(text: str) -> str:
    """Lower case, words only: how the overlap with training data is compared."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def held_out() -> list[str]:
    """The held-out out-of-scope questions."""
    return [str(q) for q in yaml.safe_load(QUALITY.read_text(encoding="utf-8"))["out_of_scope"]]


def training_examples(folder: Path = ROOT / "data" / "nlu") -> set[str]:
    """Every NLU training example of the project, normalised (entity annotations removed)."""
    found = set()
    for path in sorted(folder.glob("*.yml")):
        for item in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu") or []:
            for line in str(item.get("examples") or "").splitlines():
                if line.strip().startswith("- "):
                    text = _ANNOTATION.sub(lambda m: m.group(1) or m.group(2), line.strip()[2:])
                    found.add(_normal(text))
    return found


def in_scope_turns() -> list[tuple[str, str]]:
    """The test conversations' messages with the entry (or ``none``) each must get."""
    return [
        (turn.user, turn.expect_entry)
        for conversation in load_conversations(DEFAULT_CONVERSATIONS)
        for turn in conversation.turns
    ]


def _events(chat: Conversation) -> list[dict[str, Any]]:
    return list(chat.tracker()["events"])


def _answered_entries(events: list[dict[str, Any]]) -> list[str]:
    slots = (e for e in events if e["event"] == "slot" and e["name"] == "kb_entry")
    return [e["value"] for e in slots if e["value"]]


def _clarified(events: list[dict[str, Any]]) -> bool:
    return any(e["event"] == "action" and e["name"] == "action_kb_clarify" for e in events)


def _handed_off(events: list[dict[str, Any]]) -> bool:
    return any(e["event"] == "pause" for e in events)


def test_the_held_out_set_is_large_varied_and_not_training_data() -> None:
    questions = held_out()
    assert len(questions) >= 60
    assert len({_normal(q) for q in questions}) == len(questions)
    overlap = sorted(q for q in questions if _normal(q) in training_examples())
    assert overlap == [], "held-out questions must not be training examples"


def test_the_overlap_check_sees_training_examples(tmp_path: Path) -> None:
    (tmp_path / "x.yml").write_text(
        'version: "3.1"\nnlu:\n  - intent: a\n    examples: |\n'
        "      - Any JOBS going at the council?\n      - bins at [AV1 2BX](postcode)\n"
    )
    assert training_examples(tmp_path) == {"any jobs going at the council", "bins at av1 2bx"}


@pytest.mark.e2e
@pytest.mark.parametrize("question", held_out())
def test_out_of_scope_is_handed_off_or_clarified(assistant: Assistant, question: str) -> None:
    chat = assistant.conversation()
    chat.say(question)
    events = _events(chat)
    assert _answered_entries(events) == [], f"{question!r} was answered with an entry"
    assert _clarified(events) or _handed_off(events), f"{question!r}: {chat.replies}"


def report_intents(rules: Path = ROOT / "data" / "rules_reports.yml") -> set[str]:
    """The intents that start the problem-report form (``action_start_report``)."""
    found = set()
    for rule in yaml.safe_load(rules.read_text(encoding="utf-8"))["rules"]:
        steps = rule["steps"]
        for step, after in itertools.pairwise(steps):
            if "intent" in step and after.get("action") == "action_start_report":
                found.add(str(step["intent"]))
    return found


@functools.cache
def takes_reports_in_the_chat() -> bool:
    """Whether the session's council takes problem reports in the chat (docs/reports.md).

    It does when its back office lists services: the profile's own list (an email or webhook
    back office), or its Open311 server's. Otherwise the knowledge base gives the web form.
    """
    reports = current().reports
    if reports is None:
        return False
    if reports.open311 is None:
        return bool(reports.services)
    query = urllib.parse.urlencode({"jurisdiction_id": reports.open311.jurisdiction_id})
    url = f"{reports.open311.endpoint.rstrip('/')}/services.json?{query}"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return bool(json.load(answer))
    except (OSError, ValueError):
        return False


def _form_started(events: list[dict[str, Any]]) -> bool:
    return any(e["event"] == "active_loop" and e.get("name") == "report_form" for e in events)


@pytest.mark.e2e
@pytest.mark.parametrize(("question", "expected"), in_scope_turns())
def test_test_conversations_are_still_answered(
    assistant: Assistant, question: str, expected: str
) -> None:
    chat = assistant.conversation()
    chat.say(question)
    events = _events(chat)
    answered = _answered_entries(events)
    topics = {entry.id: entry.topic for entry in load_entries()}
    if topics.get(expected) in report_intents() and takes_reports_in_the_chat():
        # the entry gives the web form; a council taking reports in the chat starts its own
        assert answered == [] and _form_started(events), chat.replies
    else:
        assert answered == ([] if expected == NO_ENTRY else [expected]), chat.replies


async def _candidates(assistant: Assistant, sender: str) -> list[tuple[str, str | None]]:
    """The review queue's candidates of ``sender``'s conversation: (text, entry id)."""
    client = await connect_async(assistant.redis_url)
    try:
        pending = await ReviewQueue(client, assistant.namespace).pending()
    finally:
        await client.close()
    return [(c.text, c.entry_id) for c in pending if c.conversation_id == sender]


@pytest.mark.e2e
async def test_a_tapped_topic_is_answered(assistant: Assistant) -> None:
    chat = assistant.conversation()
    [question] = chat.say("council tax")
    titles = [button["title"] for button in question.buttons]
    assert question.text.startswith("I'm not sure I understood. Did you mean:")
    assert 3 <= len(titles) <= 4 and titles[-1] == "Something else"
    assert all(title in question.text for title in titles[:-1])
    first = question.buttons[0]
    answer = chat.texts(first["payload"])
    entry = first["payload"].split('"')[-2]
    assert _answered_entries(_events(chat)) == [entry]
    assert "https://" in answer
    assert await _candidates(assistant, chat.sender) == [("council tax", entry)]


@pytest.mark.e2e
async def test_a_typed_number_picks_the_topic(assistant: Assistant) -> None:
    # channels without buttons (SMS, X) show them as a numbered list: the resident types "2"
    chat = assistant.conversation()
    [question] = chat.say("council tax")
    answer = chat.texts("2")
    entry = question.buttons[1]["payload"].split('"')[-2]
    assert _answered_entries(_events(chat)) == [entry]
    assert "https://" in answer
    assert await _candidates(assistant, chat.sender) == [("council tax", entry)]


@pytest.mark.e2e
def test_a_number_typed_later_picks_nothing(chat: Conversation) -> None:
    # only the reply right after the question is read as its number
    chat.say("council tax")
    chat.say("hello")
    chat.say("2")
    assert _answered_entries(_events(chat)) == []


@pytest.mark.e2e
async def test_something_else_hands_off_as_low_confidence(assistant: Assistant) -> None:
    chat = assistant.conversation()
    [question] = chat.say("council tax")
    chat.say(question.buttons[-1]["payload"])
    assert _handed_off(_events(chat))
    client = await connect_async(assistant.redis_url)
    try:
        queue = HandoffQueue(client, assistant.namespace)
        case_id = await queue.case_for(chat.sender)
        assert case_id is not None
        record = await queue.get(case_id)
        assert record is not None and record.reason == "low_confidence"
    finally:
        await client.close()
