"""The handoff action: give the conversation to people and pause the bot.

It writes a complete handoff record (channel, resident, transcript, intents with confidences,
entities, reason, priority, messaging window) to the Redis queue, sends the resident a holding
reply that says when a person will answer (``utter_handoff_holding``, or
``utter_handoff_safeguarding`` with the safeguarding contacts first: ``responses/handoff.yml``),
and pauses the bot for that conversation until an agent gives it back.

A conversation in Welsh (slot ``language`` = ``cy``) is routed to a team the profile marks
``welsh_speaking``, the case shows its language to agents, and the holding reply is the Welsh
one, which says a Welsh-speaking person will reply; when the profile has no Welsh-speaking
team that promise cannot be kept, so the holding reply is then the English one.

A safeguarding case opened while no agent is on duty also alerts the out-of-hours hook
``COUNCIL_SAFEGUARDING_WEBHOOK`` at once (:class:`~bot.handoff.alerts.SafeguardingAlerts`:
case id, team, priority, channel and time, none of the resident's words). The resident's reply
never waits on it for more than :data:`ALERT_TIMEOUT_SECONDS` and never fails because of it: a
failed alert is logged and recorded, and the agent console's monitor retries it; the same
records stop the monitor alerting the case a second time. The safeguarding reply says an alert
was sent only when the hook accepted it (``alert``: ``in_hours``, ``sent`` or ``not_sent``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.resources import handoff_queue
from bot import settings
from bot.channels.window import window_state
from bot.handoff.alerts import AlertOutcome, SafeguardingAlert, SafeguardingAlerts
from bot.handoff.hours import OpeningHours, reply_time
from bot.handoff.notify import WebhookNotifier
from bot.handoff.queue import HandoffQueue
from bot.handoff.record import HandoffRecord, build_record, split_conversation_id
from bot.handoff.sla import SlaPolicy
from bot.nlu.language import LANGUAGE, language_of
from bot.profile import current as council_profile

__all__ = [
    "ALERT_TIMEOUT_SECONDS",
    "ActionHandoff",
    "alert_out_of_hours",
    "alert_state",
    "handoff_reason",
]

logger = logging.getLogger(__name__)

ALERT_TIMEOUT_SECONDS = 3.0
"""How long the handoff waits for the safeguarding hook before recording a failed alert."""

_WORD = re.compile(r"\w")

_REASONS = {
    "safeguarding": "safeguarding",
    "complaint": "complaint",
    "human_agent": "asked_for_person",
    "out_of_scope": "out_of_scope",
}


def handoff_reason(intent: str | None) -> str:
    """Map the intent that led to the handoff to the record's reason."""
    return _REASONS.get(intent or "", "low_confidence")


def alert_state(open_now: bool, outcome: AlertOutcome | None) -> str:
    """What the safeguarding reply may say about alerting: ``in_hours``, ``sent``, ``not_sent``.

    ``sent`` only when the hook accepted this case's alert (now or before); no hook, a failed
    or an unfinished alert is ``not_sent``.
    """
    if open_now:
        return "in_hours"
    return "sent" if outcome in ("sent", "already_sent") else "not_sent"


async def alert_out_of_hours(
    queue: HandoffQueue, case_id: str, record: HandoffRecord
) -> AlertOutcome | None:
    """Alert ``COUNCIL_SAFEGUARDING_WEBHOOK`` about the safeguarding case ``case_id`` now.

    ``record`` is what the handoff wrote; when the conversation joined an open case (escalated
    to safeguarding), the alert describes that case as stored.

    Returns:
        What :meth:`SafeguardingAlerts.send` did; None when no hook is configured (logged).

    Raises:
        redis.RedisError: Redis failed, so the alert could not be recorded.
    """
    url = settings.current().safeguarding_webhook
    if not url:
        logger.warning(
            "safeguarding case %s opened out of hours, but COUNCIL_SAFEGUARDING_WEBHOOK is not "
            "set: no alert sent",
            case_id,
        )
        return None
    stored = await queue.get(case_id)
    alert = SafeguardingAlert.for_record(stored if stored is not None else record)
    alerts = SafeguardingAlerts(
        queue.redis,
        queue.namespace,
        hook=WebhookNotifier(url, timeout_seconds=ALERT_TIMEOUT_SECONDS),
        clock=queue.clock,
    )
    return await alerts.send(alert)


class ActionHandoff(Action):
    """Open (or join) a handoff case, tell the resident, pause the bot.

    Args:
        queue: The handoff queue (default: this deployment's, from :mod:`actions.resources`).
        hours: The contact centre's opening hours (default: the council profile's, with its
            closed days).
        clock: Returns the current time.
    """

    def __init__(
        self,
        queue: HandoffQueue | None = None,
        hours: OpeningHours | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._queue = queue
        self._hours = hours or SlaPolicy.from_env().hours
        self._clock = clock

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        """Write the handoff record, alert out of hours, and send the holding reply."""
        now = self._clock()
        intent = tracker.get_intent_of_latest_message(skip_fallback_intent=False)
        text = tracker.latest_message.get("text") or ""
        if intent == "nlu_fallback" and not _WORD.search(text):
            # empty, emoji-only or control characters: nothing a person could act on either
            dispatcher.utter_message(response="utter_handoff_rephrase")
            return []
        # nlu_fallback keeps the classifier's best guess as the topic, so routing still works
        ranking = tracker.latest_message.get("intent_ranking") or []
        topic = next(
            (item["name"] for item in ranking if item.get("name") not in {None, "nlu_fallback"}),
            intent or "unknown",
        )
        reason = handoff_reason(intent)
        channel = tracker.get_latest_input_channel() or "rest"
        language = language_of(tracker.get_slot(LANGUAGE))
        metadata = tracker.latest_message.get("metadata") or {}
        account, sender = split_conversation_id(tracker.sender_id, channel)
        queue = self._queue or await handoff_queue()
        window = await window_state(
            queue.redis,
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
            language=language,
        )
        case_id = await queue.open(record)
        when = reply_time(self._hours, now).variables()
        if record.priority != "P1":
            if not council_profile().routing.welsh_speaking:
                language = "en"  # nobody to keep the Welsh reply's promise of a Welsh speaker
            dispatcher.utter_message(response="utter_handoff_holding", language=language, **when)
            return [ConversationPaused()]
        open_now = self._hours.is_open(now)
        outcome: AlertOutcome | None = None
        if not open_now:
            try:
                outcome = await alert_out_of_hours(queue, case_id, record)
            except Exception:
                # Redis failed after the case was opened: the resident still gets the emergency
                # numbers; the console's monitor alerts out-of-hours cases that have no alert.
                logger.exception("could not record the safeguarding alert for case %s", case_id)
        dispatcher.utter_message(
            response="utter_handoff_safeguarding",
            alert=alert_state(open_now, outcome),
            language=language,
            **when,
        )
        return [ConversationPaused()]
