"""The knowledge-base action: answer a routine question from the entries editors maintain.

It reads the classified intent, its confidence, the message and the input channel, asks the
knowledge base for the entry that fits, and utters that entry's variant for the channel in
the conversation's language (slot ``language``). When nothing fits it does not invent an
answer: it hands the conversation to a person. A conversation in Welsh whose entry has no
Welsh answer is handed to a person too (a Welsh-speaking team, with the Welsh holding reply:
``docs/welsh.md``), rather than answered in English.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.resources import shared_redis
from bot.keys import namespace
from bot.knowledge.embedding import default_encoder, message_embedding, one_blas_thread
from bot.knowledge.store import KnowledgeBase
from bot.nlu.language import LANGUAGE, language_of

__all__ = ["HANDOFF_ACTION", "ActionAnswer", "latest_intent", "shared_knowledge_base"]

HANDOFF_ACTION = "action_handoff"
_FALLBACK = "nlu_fallback"

_shared: KnowledgeBase | None = None


async def shared_knowledge_base() -> KnowledgeBase:
    """Return this process' knowledge base (one index, refreshed from Redis), creating it once."""
    global _shared  # one index per action-server process: embeddings are reused across turns
    if _shared is None:
        one_blas_thread()  # one message at a time: small matrix products
        _shared = KnowledgeBase(await shared_redis(), namespace())
    return _shared


def latest_intent(message: dict[str, Any]) -> tuple[str | None, float]:
    """Return the intent and confidence of a parsed message.

    For ``nlu_fallback`` the classifier's best real intent is returned with its (low)
    confidence, so the knowledge base can still try similarity within all entries.
    """
    intent = message.get("intent") or {}
    name, confidence = intent.get("name"), float(intent.get("confidence") or 0.0)
    if name != _FALLBACK:
        return name, confidence
    for item in message.get("intent_ranking") or []:
        if item.get("name") not in {None, _FALLBACK}:
            return str(item["name"]), float(item.get("confidence") or 0.0)
    return None, 0.0


class ActionAnswer(Action):
    """Utter the knowledge-base entry that answers the latest message, or hand off.

    Args:
        knowledge_base: The knowledge base (default: the process-wide one, whose encoder is
            loaded and run once here: rasa-sdk creates the action at start-up, so the first
            resident does not wait for it).
        clock: Returns the current time (UTC).
    """

    def __init__(
        self,
        knowledge_base: KnowledgeBase | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._kb = knowledge_base
        self._clock = clock
        if knowledge_base is None:
            default_encoder().encode(["warm up"])

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_answer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        """Answer from the knowledge base or follow up with the handoff action."""
        kb = self._kb or await shared_knowledge_base()
        intent, confidence = latest_intent(tracker.latest_message)
        text = tracker.latest_message.get("text")
        channel = tracker.get_latest_input_channel()
        # the NLU's embedding of the message, when it sent one: no second encoding here
        vector = message_embedding(tracker.latest_message)
        found = await kb.select(intent, confidence, text, channel, self._clock(), vector)
        if found is None:
            return [FollowupAction(HANDOFF_ACTION)]
        entry, _ = found
        answer = entry.answer_in(language_of(tracker.get_slot(LANGUAGE)), channel)
        if answer is None:
            return [FollowupAction(HANDOFF_ACTION)]
        dispatcher.utter_message(text=answer)
        return [SlotSet("kb_entry", entry.id)]
