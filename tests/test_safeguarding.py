import pytest
from rasa.shared.nlu.training_data.message import Message

from bot.safeguarding import SafeguardingGuard, risk_phrase


@pytest.mark.parametrize(
    "text",
    [
        "my partner hits me when he's drunk",
        "i dont want to live anymore",
        "I'm going to kill myself",
        "my neighbours kids are left alone all the time",
        "got nowhere to sleep tonight",
        "i am sleeping rough by the station",
        "worried about domestic abuse next door",
        "not safe at home",
    ],
)
def test_risk_phrases_are_found(text: str) -> None:
    assert risk_phrase(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "when is my bin day",
        "how do I pay council tax",
        "the street light is out",
        "kill the noise from the bins lol no",
    ],
)
def test_routine_messages_pass(text: str) -> None:
    assert risk_phrase(text) is None


def test_guard_overrides_intent_and_keeps_ranking() -> None:
    guard = SafeguardingGuard()
    message = Message(
        data={
            "text": "he hits me and I'm scared",
            "intent": {"name": "complaint", "confidence": 0.7},
            "intent_ranking": [{"name": "complaint", "confidence": 0.7}],
        }
    )
    guard.process([message])
    assert message.get("intent") == {"name": "safeguarding", "confidence": 1.0}
    assert [r["name"] for r in message.get("intent_ranking")] == ["safeguarding", "complaint"]


def test_guard_leaves_routine_messages() -> None:
    message = Message(
        data={"text": "bin day?", "intent": {"name": "bin_collection_day", "confidence": 0.9}}
    )
    SafeguardingGuard().process([message])
    assert message.get("intent")["name"] == "bin_collection_day"
