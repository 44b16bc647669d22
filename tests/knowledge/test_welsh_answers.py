"""Knowledge-base answers in Welsh: ``translations`` on an entry, served to Welsh conversations.

An entry without a Welsh answer is not answered in English to a Welsh conversation: the action
hands off (to a Welsh-speaking team, with the Welsh holding reply: tests/test_welsh_handoff.py).
The demo's Welsh answers are for the ten most asked entries; a native speaker should review them.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.knowledge import ActionAnswer
from bot.knowledge.model import Entry, entry_problems
from bot.knowledge.store import KnowledgeBase
from tests.knowledge.conftest import make_entry

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
TEN = {
    "council-tax-pay-online",
    "council-tax-direct-debit",
    "council-tax-single-person-discount",
    "council-tax-moving-home",
    "bin-request-new-or-replacement",
    "bin-request-garden-waste",
    "bulky-waste-collection",
    "recycling-centre-opening",
    "report-pothole",
    "report-fly-tipping",
}
WELSH = {"default": "Talwch ar-lein.", "sms": "Talwch yn https://www.example.gov.uk/talu"}


def test_an_entry_answers_in_welsh_where_it_has_welsh() -> None:
    entry = make_entry(translations={"cy": WELSH})
    assert entry.answer_in("cy", "sms") == WELSH["sms"]
    assert entry.answer_in("cy", "telegram") == WELSH["default"]
    assert entry.answer_in("en", "telegram") == entry.answer_for("telegram")
    assert make_entry().answer_in("cy", "sms") is None
    assert make_entry(translations={"cy": {"default": "  "}}).answer_in("cy", None) is None


def test_welsh_answers_are_plain_text_too() -> None:
    entry = make_entry(translations={"cy": {"default": "<b>Helo</b> javascript:alert(1)"}})
    assert entry.answer_in("cy", None) == "Helo alert(1)"


def test_translations_round_trip_and_old_entries_keep_their_form() -> None:
    entry = make_entry(translations={"cy": WELSH})
    assert Entry.from_dict(entry.to_dict()) == entry
    old = make_entry()
    assert "translations" not in old.to_dict()
    assert Entry.from_dict(old.to_dict()) == old


@pytest.mark.parametrize(
    ("translations", "problem"),
    [
        ({"fr": {"default": "Bonjour"}}, "translations.fr: unknown language (use cy)"),
        ({"cy": {"sms": "Helo"}}, "translations.cy.default: the answer must not be empty"),
        ({"cy": {"default": "Helo", "fax": "x"}}, "translations.cy.fax: unknown channel"),
        ({"cy": {"default": "Helo", "sms": "a" * 321}}, "translations.cy.sms: 321 characters"),
        ({"cy": {"default": "Gweler http://example.gov.uk"}}, "must start with https://"),
        ({"cy": {"default": "<script>x</script>Helo"}}, "remove the HTML <script>"),
    ],
)
def test_welsh_answers_are_checked_like_english_ones(
    translations: dict[str, dict[str, str]], problem: str
) -> None:
    problems = entry_problems(make_entry(translations=translations))
    assert any(problem in p for p in problems), problems


def test_the_demo_has_welsh_for_the_ten_most_asked(demo_entries: list[Entry]) -> None:
    welsh = {e.id: e for e in demo_entries if e.translations}
    assert set(welsh) == TEN
    for entry in welsh.values():
        assert set(entry.translations["cy"]) == set(entry.answers)  # every channel's variant
        assert entry_problems(entry) == []
        # the same links and numbers as the English answer
        for channel, text in entry.answers.items():
            for fact in re.findall(r"https://\S+[^\s.,]|0\d{4} \d{3} \d{3}|£\d+", text):
                assert fact in entry.translations["cy"][channel], (entry.id, channel, fact)


def _tracker(text: str, intent: str, language: str | None) -> Tracker:
    message: dict[str, Any] = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9},
        "intent_ranking": [{"name": intent, "confidence": 0.9}],
        "entities": [],
    }
    events = [{"event": "user", "text": text, "parse_data": message, "input_channel": "sms"}]
    return Tracker(
        "sms:+441632960000:+447700900123",
        {"language": language},
        message,
        events,
        False,
        None,
        {},
        "action_listen",
    )


async def _answer(kb: KnowledgeBase, tracker: Tracker) -> tuple[list[Any], list[str]]:
    dispatcher = CollectingDispatcher()
    events = await ActionAnswer(kb, clock=lambda: NOW).run(dispatcher, tracker, {})
    return events, [m["text"] for m in dispatcher.messages]


async def test_a_welsh_question_gets_the_welsh_answer(demo_kb: KnowledgeBase) -> None:
    entry = await demo_kb.get("council-tax-pay-online")
    tracker = _tracker("Sut ydw i'n talu treth y cyngor?", "council_tax_pay", "cy")
    events, texts = await _answer(demo_kb, tracker)
    assert events == [SlotSet("kb_entry", "council-tax-pay-online")]
    assert texts == [entry.translations["cy"]["sms"]]


async def test_the_same_question_in_english_gets_english(demo_kb: KnowledgeBase) -> None:
    entry = await demo_kb.get("council-tax-pay-online")
    tracker = _tracker("How do I pay my council tax?", "council_tax_pay", "en")
    _, texts = await _answer(demo_kb, tracker)
    assert texts == [entry.answers["sms"]]


async def test_no_welsh_answer_hands_off_instead_of_answering_in_english(
    demo_kb: KnowledgeBase,
) -> None:
    tracker = _tracker("Sut mae cael trwydded barcio i ymwelwyr?", "parking_permit", "cy")
    events, texts = await _answer(demo_kb, tracker)
    assert texts == []
    assert events == [FollowupAction("action_handoff")]


async def test_a_welsh_answer_published_later_is_served(demo_kb: KnowledgeBase) -> None:
    entry = await demo_kb.get("parking-permit-visitor")
    welsh = replace(entry, translations={"cy": {"default": "Gallwch brynu trwyddedau ymwelwyr."}})
    await demo_kb.import_entry(welsh, "editor", "Welsh answer")
    tracker = _tracker("Trwydded barcio i ymwelwyr", "parking_permit", "cy")
    _, texts = await _answer(demo_kb, tracker)
    assert texts == ["Gallwch brynu trwyddedau ymwelwyr."]
