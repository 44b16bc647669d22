from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    UserUttered,
)
from rasa.shared.core.events import (
    SlotSet as RasaSlotSet,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig
from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.knowledge import (
    ActionAnswer,
    ActionChoice,
    ActionClarify,
    choice_payload,
    latest_intent,
    out_of_scope_won,
)
from bot import rasa_patches
from bot.keys import key
from bot.knowledge.review import ReviewQueue
from bot.knowledge.store import KnowledgeBase

ROOT = Path(__file__).resolve().parents[2]
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


async def _run(
    kb: KnowledgeBase, tracker: Tracker, action: type[ActionAnswer] = ActionAnswer
) -> tuple[list[dict[str, Any]], list[str]]:
    dispatcher = CollectingDispatcher()
    events = await action(kb, clock=lambda: NOW).run(dispatcher, tracker, {})
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
            (None, 0.0),  # the classifier would not answer: no topic is trusted
        ),
        ({}, (None, 0.0)),
    ],
)
def test_latest_intent(message: dict[str, Any], expected: tuple[str | None, float]) -> None:
    assert latest_intent(message) == expected


# Clarifying questions (issue 13): unsure and near several topics, the resident is asked.

SENDER = "whatsapp:+441632960000:+447700900123"


# The tracker an action gets is what the Rasa server sends: bot.rasa_patches sends the current
# turn's events only (issue 12), so nothing before the resident's latest message is seen.
PROJECT_DOMAIN = Domain.load(str(ROOT / "responses"))


def _clarified(
    question: str,
    parse: dict[str, Any],
    options: list[str],
    action: str = "action_kb_choice",
    channel: str = "whatsapp",
) -> Tracker:
    """The tracker ``action`` is sent when ``question`` got a clarifying question offering
    ``options`` and the resident replied (``parse``) on ``channel``."""
    rasa_patches.install()
    unsure = {"name": "nlu_fallback", "confidence": 0.4}
    events = [
        ActionExecuted("action_listen"),
        UserUttered(question, unsure, input_channel=channel),
        ActionExecuted("action_answer"),
        RasaSlotSet("kb_options", options),
        RasaSlotSet("kb_question", question),
        ActionExecuted("action_kb_clarify"),
        BotUttered("I'm not sure I understood. Did you mean: ..."),
        RasaSlotSet("kb_options", options),
        ActionExecuted("action_listen"),
        UserUttered(
            parse["text"], parse["intent"], parse["entities"], parse, input_channel=channel
        ),
    ]
    tracker = DialogueStateTracker.from_events(SENDER, events, slots=PROJECT_DOMAIN.slots)
    remote = RemoteAction(action, EndpointConfig("http://127.0.0.1:1/webhook"))
    return Tracker.from_dict(remote._action_call_format(tracker, PROJECT_DOMAIN)["tracker"])


def _choose(choice: str) -> dict[str, Any]:
    return {
        "text": choice_payload(choice),
        "intent": {"name": "kb_choose", "confidence": 1.0},
        "entities": [{"entity": "kb_choice", "value": choice}],
    }


def _typed(text: str, intent: str = "inform") -> dict[str, Any]:
    return {"text": text, "intent": {"name": intent, "confidence": 0.75}, "entities": []}


async def test_unsure_and_near_several_topics_asks_which(demo_kb: KnowledgeBase) -> None:
    tracker = _tracker("council tax", "nlu_fallback", 0.25, "whatsapp")
    events, texts = await _run(demo_kb, tracker)
    assert texts == []
    [options, question, follow] = events
    assert follow == FollowupAction("action_kb_clarify")
    assert options["name"] == "kb_options"
    assert question == SlotSet("kb_question", "council tax")  # for the choice's candidate
    topics = {(await demo_kb.get(i)).topic for i in options["value"]}
    assert 2 <= len(topics) == len(options["value"]) <= 3
    day = NOW.date().isoformat()
    assert await demo_kb.redis.get(key(demo_kb.namespace, "stats", "clarifications", day)) == "1"


async def test_a_welsh_conversation_is_not_asked_in_english_topics(
    demo_kb: KnowledgeBase,
) -> None:
    # entries' titles are English only: an unsure Welsh message goes to a Welsh speaker
    english = _tracker("treth y cyngor", "nlu_fallback", 0.25, "whatsapp")
    welsh = Tracker(
        english.sender_id,
        {"language": "cy"},
        english.latest_message,
        english.events,
        False,
        None,
        {},
        "action_listen",
    )
    events, texts = await _run(demo_kb, welsh)
    assert (events, texts) == ([FollowupAction("action_handoff")], [])


@pytest.mark.parametrize(
    "text", ["I'd like to apply for a job at the council", "can I rent a council allotment"]
)
async def test_the_known_wrong_answers_are_not_given(demo_kb: KnowledgeBase, text: str) -> None:
    events, texts = await _run(demo_kb, _tracker(text, "nlu_fallback", 0.3, "whatsapp"))
    assert texts == []
    assert FollowupAction("action_kb_clarify") in events or events == [
        FollowupAction("action_handoff")
    ]
    assert SlotSet("kb_entry", None) not in events and not any(
        e.get("name") == "kb_entry" for e in events
    )


async def test_the_question_names_the_topics_and_something_else(demo_kb: KnowledgeBase) -> None:
    options = ["council-tax-pay-online", "council-tax-reduction"]
    tracker = Tracker(SENDER, {"kb_options": options}, {}, [], False, None, {}, "action_answer")
    dispatcher = CollectingDispatcher()
    events = await ActionClarify(demo_kb).run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_kb_clarify"
    assert message["offered"] == "two"
    assert message["title_1"] == "Paying council tax"
    assert message["title_2"] == "Council Tax Reduction (low income)"
    assert message["payload_1"] == '/kb_choose{"kb_choice":"council-tax-pay-online"}'
    assert message["payload_else"] == '/kb_choose{"kb_choice":"else"}'
    assert events == [SlotSet("kb_options", options), FollowupAction("action_listen")]


async def test_a_chosen_topic_is_answered_and_kept_for_editors(demo_kb: KnowledgeBase) -> None:
    options = ["council-tax-pay-online", "council-tax-reduction"]
    question = "my name is Jo Bloggs, council tax help pls"
    tracker = _clarified(question, _choose("council-tax-reduction"), options, "action_answer")
    assert [e["event"] for e in tracker.events] == ["user"]  # the question itself is not sent
    events, texts = await _run(demo_kb, tracker)
    assert texts == [(await demo_kb.get("council-tax-reduction")).answers["whatsapp"]]
    assert events == [
        SlotSet("kb_entry", "council-tax-reduction"),
        SlotSet("kb_options", None),
        SlotSet("kb_question", None),
    ]
    [candidate] = await ReviewQueue(demo_kb.redis, demo_kb.namespace).pending()
    assert (candidate.source, candidate.suggestion) == ("clarification", "council_tax_discount")
    assert candidate.entry_id == "council-tax-reduction"
    assert "Jo Bloggs" not in candidate.text and "council tax help" in candidate.text
    assert candidate.conversation_id == SENDER


async def test_a_typed_number_picks_the_option(demo_kb: KnowledgeBase) -> None:
    # X has no buttons: the options came as a numbered list and the resident typed "2"
    options = ["council-tax-pay-online", "council-tax-reduction"]
    tracker = _clarified("council tax", _typed("2"), options, channel="twitter")
    assert [e["event"] for e in tracker.events] == ["user"]  # the question itself is not sent
    events, texts = await _run(demo_kb, tracker, ActionChoice)
    assert texts == [(await demo_kb.get("council-tax-reduction")).answers["default"]]
    assert events[0] == SlotSet("kb_entry", "council-tax-reduction")
    [candidate] = await ReviewQueue(demo_kb.redis, demo_kb.namespace).pending()
    assert (candidate.text, candidate.entry_id) == ("council tax", "council-tax-reduction")
    tracker = _clarified("council tax", _typed("option 3 please", "nlu_fallback"), options)
    events, texts = await _run(demo_kb, tracker, ActionChoice)
    assert (events[-1], texts) == (FollowupAction("action_handoff"), [])  # 3 = something else


async def test_a_reply_that_is_no_number_is_answered_as_a_question(demo_kb: KnowledgeBase) -> None:
    options = ["council-tax-reduction", "council-tax-moving-home"]
    parse = {
        "text": "how do I pay my council tax",
        "intent": {"name": "council_tax_pay", "confidence": 0.95},
        "entities": [],
    }
    events, texts = await _run(demo_kb, _clarified("council tax", parse, options), ActionChoice)
    assert events[0] == SlotSet("kb_entry", "council-tax-pay-online")
    assert texts == [(await demo_kb.get("council-tax-pay-online")).answers["whatsapp"]]
    for number in ("0", "4", "12"):  # no such option: not a choice
        events, _ = await _run(
            demo_kb, _clarified("council tax", _typed(number), options), ActionChoice
        )
        assert not any(e.get("name") == "kb_entry" for e in events)
    assert await ReviewQueue(demo_kb.redis, demo_kb.namespace).pending() == []


async def test_only_the_reply_right_after_the_question_picks_by_number(
    demo_kb: KnowledgeBase,
) -> None:
    # action_answer runs for messages the rules do not know to be that reply
    options = ["council-tax-pay-online", "council-tax-reduction"]
    tracker = _clarified("council tax", _typed("2", "nlu_fallback"), options, "action_answer")
    events, _ = await _run(demo_kb, tracker)
    assert not any(e.get("name") == "kb_entry" for e in events)


async def test_something_else_hands_off(demo_kb: KnowledgeBase) -> None:
    options = ["council-tax-pay-online"]
    tracker = _clarified("council tax", _choose("else"), options, "action_answer")
    events, texts = await _run(demo_kb, tracker)
    assert texts == []
    assert events == [
        SlotSet("kb_options", None),
        SlotSet("kb_question", None),
        FollowupAction("action_handoff"),
    ]
    assert await ReviewQueue(demo_kb.redis, demo_kb.namespace).pending() == []


async def test_clarification_without_live_options_hands_off(demo_kb: KnowledgeBase) -> None:
    tracker = Tracker(SENDER, {"kb_options": ["gone"]}, {}, [], False, None, {}, "action_answer")
    events = await ActionClarify(demo_kb).run(CollectingDispatcher(), tracker, {})
    assert events == [FollowupAction("action_handoff")]


async def test_no_entry_answers_when_out_of_scope_won(demo_kb: KnowledgeBase) -> None:
    # the classifier falls back because its trained out_of_scope intent won: even a message
    # one entry is clearly closest to is not answered from the knowledge base
    text = "I'm moving out of Ashvale next month"  # 0.59 ahead of the next topic
    message: dict[str, Any] = {
        "text": text,
        "intent": {"name": "nlu_fallback", "confidence": 0.7},
        "intent_ranking": [
            {"name": "nlu_fallback", "confidence": 0.7},
            {"name": "out_of_scope", "confidence": 0.7},
            {"name": "council_tax_move", "confidence": 0.2},
        ],
        "entities": [],
    }
    events = [{"event": "user", "text": text, "parse_data": message, "input_channel": "sms"}]
    tracker = Tracker(SENDER, {}, message, events, False, None, {}, "action_listen")
    found, texts = await _run(demo_kb, tracker)
    assert texts == []
    assert FollowupAction("action_kb_clarify") in found or found == [
        FollowupAction("action_handoff")
    ]
    assert out_of_scope_won(message)
    assert not out_of_scope_won({**message, "intent": {"name": "council_tax_pay"}})
    ranking = [{"name": "nlu_fallback"}, {"name": "council_tax_pay"}, {"name": "out_of_scope"}]
    assert not out_of_scope_won({**message, "intent_ranking": ranking})
