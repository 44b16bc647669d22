from datetime import UTC, datetime
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.knowledge import ActionAnswer, latest_intent
from bot.knowledge.store import KnowledgeBase

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def _tracker(text: str, intent: str, confidence: float, channel: str) -> Tracker:
    ranking = [{"name": intent, "confidence": confidence}]
    if intent == "nlu_fallback":
        ranking.append({"name": "report_pothole", "confidence": confidence - 0.05})
    message: dict[str, Any] = {
        "text": text,
        "intent": {"name": intent, "confidence": confidence},
        "intent_ranking": ranking,
        "entities": [],
    }
    events = [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": text, "parse_data": message, "input_channel": channel},
    ]
    return Tracker(
        "whatsapp:+441632960000:+447700900123",
        {},
        message,
        events,
        False,
        None,
        {},
        "action_listen",
    )


async def _run(kb: KnowledgeBase, tracker: Tracker) -> tuple[list[dict[str, Any]], list[str]]:
    dispatcher = CollectingDispatcher()
    events = await ActionAnswer(kb, clock=lambda: NOW).run(dispatcher, tracker, {})
    return events, [m["text"] for m in dispatcher.messages]


async def test_answers_with_the_channel_variant(demo_kb: KnowledgeBase) -> None:
    entry = await demo_kb.get("council-tax-student-exemption")
    tracker = _tracker(
        "I'm a student, do I pay council tax?", "council_tax_discount", 0.91, "whatsapp"
    )
    events, texts = await _run(demo_kb, tracker)
    assert texts == [entry.answers["whatsapp"]]
    assert events == [SlotSet("kb_entry", "council-tax-student-exemption")]


async def test_other_channels_get_the_default_text(demo_kb: KnowledgeBase) -> None:
    entry = await demo_kb.get("report-pothole")
    tracker = _tracker("pothole on Elm Road", "report_pothole", 0.97, "telegram")
    _, texts = await _run(demo_kb, tracker)
    assert texts == [entry.answers["default"]]


async def test_unsure_intent_falls_back_to_similarity(demo_kb: KnowledgeBase) -> None:
    tracker = _tracker("the lamp post outside is flickering", "nlu_fallback", 0.31, "sms")
    events, texts = await _run(demo_kb, tracker)
    assert events == [SlotSet("kb_entry", "report-street-light")]
    assert texts == [(await demo_kb.get("report-street-light")).answers["sms"]]


async def test_nothing_fits_hands_off_without_inventing(demo_kb: KnowledgeBase) -> None:
    tracker = _tracker("what's on at the cinema tonight", "nlu_fallback", 0.2, "whatsapp")
    events, texts = await _run(demo_kb, tracker)
    assert texts == []
    assert events == [FollowupAction("action_handoff")]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"intent": {"name": "parking_fine", "confidence": 0.8}}, ("parking_fine", 0.8)),
        (
            {
                "intent": {"name": "nlu_fallback", "confidence": 0.3},
                "intent_ranking": [
                    {"name": "nlu_fallback", "confidence": 0.3},
                    {"name": "opening_hours", "confidence": 0.25},
                ],
            },
            ("opening_hours", 0.25),
        ),
        ({}, (None, 0.0)),
    ],
)
def test_latest_intent(message: dict[str, Any], expected: tuple[str | None, float]) -> None:
    assert latest_intent(message) == expected
