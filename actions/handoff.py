"""The handoff action: give the conversation to people and pause the bot.

It writes a complete handoff record (channel, resident, transcript, intents with confidences,
entities, reason, priority, messaging window) to the Redis queue, sends the resident a holding
reply that says when a person will answer, and pauses the bot for that conversation until an
agent gives it back.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.resources import handoff_queue, shared_redis
from bot.channels.window import window_state
from bot.handoff.hours import holding_reply
from bot.handoff.record import build_record, split_conversation_id

__all__ = ["ActionHandoff", "handoff_reason"]

_WORD = re.compile(r"\w")
REPHRASE = (
    "Sorry, I couldn't read that. Could you tell me in words what you need? "
    "You can also say 'talk to a person'."
)

_REASONS = {
    "safeguarding": "safeguarding",
    "complaint": "complaint",
    "human_agent": "asked_for_person",
    "out_of_scope": "out_of_scope",
}


def handoff_reason(intent: str | None) -> str:
    """Map the intent that led to the handoff to the record's reason."""
    return _REASONS.get(intent or "", "low_confidence")


class ActionHandoff(Action):
    """Open (or join) a handoff case, tell the resident, pause the bot."""

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        """Write the handoff record and send the holding reply."""
        now = datetime.now(UTC)
        intent = tracker.get_intent_of_latest_message(skip_fallback_intent=False)
        text = tracker.latest_message.get("text") or ""
        if intent == "nlu_fallback" and not _WORD.search(text):
            # empty, emoji-only or control characters: nothing a person could act on either
            dispatcher.utter_message(text=REPHRASE)
            return []
        # nlu_fallback keeps the classifier's best guess as the topic, so routing still works
        ranking = tracker.latest_message.get("intent_ranking") or []
        topic = next(
            (item["name"] for item in ranking if item.get("name") not in {None, "nlu_fallback"}),
            intent or "unknown",
        )
        reason = handoff_reason(intent)
        channel = tracker.get_latest_input_channel() or "rest"
        metadata = tracker.latest_message.get("metadata") or {}
        account, sender = split_conversation_id(tracker.sender_id, channel)
        queue = await handoff_queue()
        window = await window_state(
            await shared_redis(),
            tracker.sender_id,
            namespace=queue.namespace,
            now=now.timestamp(),
        )
        record = build_record(
            tracker.sender_id,
            list(tracker.events),
            reason=reason,
            topic=topic,
            channel=channel,
            account=metadata.get("account", account),
            sender=sender,
            display_name=metadata.get("display_name", ""),
            window=window,
            now=now,
        )
        await queue.open(record)
        dispatcher.utter_message(text=holding_reply(record.priority, now))
        return [ConversationPaused()]
