"""When a person will reply, and the holding reply a resident reads for each case."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import ActionHandoff, alert_state
from bot.handoff.hours import OpeningHours, ReplyTime, reply_time, spoken_time
from bot.handoff.queue import HandoffQueue
from bot.testing.responses import rendered

# Wednesday 3 March 2027 (GMT, so UTC is London time); Friday 5 and Monday 8 March.
HOURS = OpeningHours()


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2027, 3, 3, 11, 0, tzinfo=UTC), ReplyTime("open")),
        (datetime(2027, 3, 3, 7, 30, tzinfo=UTC), ReplyTime("today", "9am", "Wednesday")),
        (datetime(2027, 3, 3, 17, 0, tzinfo=UTC), ReplyTime("tomorrow", "9am", "Thursday")),
        (datetime(2027, 3, 5, 18, 0, tzinfo=UTC), ReplyTime("later", "9am", "Monday")),
    ],
)
def test_reply_time(now: datetime, expected: ReplyTime) -> None:
    assert reply_time(HOURS, now) == expected


def test_spoken_time() -> None:
    assert [spoken_time(time(h, m)) for h, m in ((9, 0), (8, 30), (12, 0), (17, 45), (0, 5))] == [
        "9am",
        "8.30am",
        "12pm",
        "5.45pm",
        "12.05am",
    ]


def test_alert_state_claims_an_alert_only_when_the_hook_took_it() -> None:
    assert alert_state(True, None) == "in_hours"
    assert alert_state(False, "sent") == alert_state(False, "already_sent") == "sent"
    for outcome in (None, "failed", "in_progress", "not_yet"):
        assert alert_state(False, outcome) == "not_sent"  # type: ignore[arg-type]


def _tracker(text: str, intent: str = "human_agent") -> Tracker:
    ranked = {"name": intent, "confidence": 0.95}
    message = {"text": text, "intent": ranked, "intent_ranking": [ranked]}
    events = [{"event": "user", "text": text, "parse_data": message, "input_channel": "sms"}]
    return Tracker("sms:+441632960000:+447700900123", {}, message, events, False, None, {}, "")


@pytest.mark.parametrize(
    ("now", "ending"),
    [
        (datetime(2027, 3, 3, 11, 0, tzinfo=UTC), "reply here within the next few working hours."),
        (datetime(2027, 3, 3, 7, 30, tzinfo=UTC), "reply here after we open at 9am today."),
        (datetime(2027, 3, 3, 17, 0, tzinfo=UTC), "reply here after we open at 9am tomorrow."),
        (datetime(2027, 3, 5, 18, 0, tzinfo=UTC), "reply here after we open at 9am on Monday."),
    ],
)
async def test_holding_reply_says_when_a_person_will_answer(
    queue: HandoffQueue, now: datetime, ending: str
) -> None:
    dispatcher = CollectingDispatcher()
    await ActionHandoff(queue, HOURS, clock=lambda: now).run(
        dispatcher, _tracker("can I speak to someone"), {}
    )
    [text] = rendered(dispatcher.messages, "sms")
    assert text.startswith("Thanks, I've passed this to a person in our team")
    assert text.endswith(ending)


async def test_an_unreadable_message_is_asked_again(queue: HandoffQueue) -> None:
    dispatcher = CollectingDispatcher()
    tracker = _tracker("🙂", "nlu_fallback")
    assert await ActionHandoff(queue, HOURS).run(dispatcher, tracker, {}) == []
    assert "in words" in rendered(dispatcher.messages)[0]
