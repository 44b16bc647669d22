"""action_answer selects with the NLU's embedding when the parse data carries one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.knowledge import ActionAnswer
from bot.knowledge.embedding import EMBEDDING, default_encoder, embedding_output
from bot.knowledge.store import KnowledgeBase
from tests.knowledge.conftest import ROOT, MemoEncoder

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
SHA = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def _tracker(text: str, extra: dict[str, Any]) -> Tracker:
    # an unsure intent: the message's similarity to the example questions decides
    message = {"text": text, "intent": {"name": "nlu_fallback", "confidence": 0.2}, **extra}
    events = [{"event": "user", "text": text, "parse_data": message, "input_channel": "rest"}]
    return Tracker("rest-resident", {}, message, events, False, None, {}, "action_listen")


async def _answer(kb: KnowledgeBase, tracker: Tracker) -> list[dict[str, Any]]:
    return await ActionAnswer(kb, clock=lambda: NOW).run(CollectingDispatcher(), tracker, {})


async def test_the_carried_embedding_is_used_and_the_text_not_encoded_again(
    demo_kb: KnowledgeBase, encoder: MemoEncoder
) -> None:
    text = "there's a pothole on my road"
    vector = default_encoder(str(ROOT / "config.yml")).encode([text])[0]
    encoder.calls.clear()
    events = await _answer(demo_kb, _tracker(text, {EMBEDDING: embedding_output(vector, SHA)}))
    assert events == [SlotSet("kb_entry", "report-pothole")]
    assert text not in encoder.calls


async def test_without_an_embedding_the_action_encodes_the_text_itself(
    demo_kb: KnowledgeBase, encoder: MemoEncoder
) -> None:
    text = "there's a pothole on my road"
    encoder.calls.clear()
    events = await _answer(demo_kb, _tracker(text, {}))
    assert events == [SlotSet("kb_entry", "report-pothole")]
    assert text in encoder.calls


async def test_the_embedding_decides_as_the_text_would(demo_kb: KnowledgeBase) -> None:
    # the carried vector is the message's own: another text's vector would choose its entry
    other = default_encoder(str(ROOT / "config.yml")).encode(["When is the tip open?"])[0]
    tracker = _tracker("there's a pothole on my road", {EMBEDDING: embedding_output(other, SHA)})
    assert await _answer(demo_kb, tracker) == [SlotSet("kb_entry", "recycling-centre-opening")]
