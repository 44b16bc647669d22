"""The knowledge-base action: answer a routine question from the entries editors maintain.

It reads the classified intent, its confidence, the message and the input channel, asks the
knowledge base for the entry that fits, and utters that entry's variant for the channel in
the conversation's language (slot ``language``). When nothing fits it does not invent an
answer: when some topics are likely (:meth:`bot.knowledge.selector.Index.alternatives`) it asks
which one the resident means (``action_kb_clarify``: ``utter_kb_clarify`` with a button per
topic and "something else"), otherwise it hands the conversation to a person. The resident's
choice (a tapped button, ``/kb_choose{"kb_choice": ...}``, or the option's number typed right
after the question: ``action_kb_choice``) answers that entry and is kept as a training-example
candidate for editors (:mod:`bot.knowledge.review`); "something else" hands off.

The action server is sent the current turn's events only (:mod:`bot.rasa_patches`), so what a
later turn needs is kept in slots: ``kb_options`` (the entries offered) and ``kb_question`` (the
message asked about, redacted). Whether a message is the reply right after the question is
known only to the Rasa server: its rules run ``action_kb_choice`` then and only then.
Clarifications are counted for the reports (:mod:`bot.knowledge.clarifications`). A
conversation in Welsh whose entry has no Welsh answer is handed to a person too (a
Welsh-speaking team, with the Welsh holding reply: ``docs/welsh.md``), rather than answered in
English.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.resources import shared_redis
from bot.keys import namespace
from bot.knowledge import clarifications
from bot.knowledge.embedding import default_encoder, message_embedding, one_blas_thread
from bot.knowledge.margin import answer_precision
from bot.knowledge.model import Entry
from bot.knowledge.review import ReviewQueue
from bot.knowledge.selector import SelectionPolicy
from bot.knowledge.store import KnowledgeBase
from bot.nlu.language import LANGUAGE, language_of
from bot.redaction import redact

__all__ = [
    "CLARIFY_ACTION",
    "HANDOFF_ACTION",
    "SOMETHING_ELSE",
    "ActionAnswer",
    "ActionChoice",
    "ActionClarify",
    "choice_payload",
    "latest_intent",
    "out_of_scope_won",
    "shared_knowledge_base",
]

HANDOFF_ACTION = "action_handoff"
CLARIFY_ACTION = "action_kb_clarify"
SOMETHING_ELSE = "else"
"""The choice of "something else" in a clarifying question."""

_FALLBACK = "nlu_fallback"
_OUT_OF_SCOPE = "out_of_scope"
_CHOOSE = "kb_choose"
_CHOICE = "kb_choice"
_OPTIONS = "kb_options"
_QUESTION = "kb_question"
_NUMBER = re.compile(r"^\D{0,12}?(\d{1,2})\D{0,12}$")
_COUNTS = {1: "one", 2: "two", 3: "three"}

_shared: KnowledgeBase | None = None


async def shared_knowledge_base() -> KnowledgeBase:
    """Return this process' knowledge base (one index, refreshed from Redis), creating it once."""
    global _shared  # one index per action-server process: embeddings are reused across turns
    if _shared is None:
        one_blas_thread()  # one message at a time: small matrix products
        policy = SelectionPolicy(answer_precision=answer_precision())
        _shared = KnowledgeBase(await shared_redis(), namespace(), policy=policy)
    return _shared


def latest_intent(message: dict[str, Any]) -> tuple[str | None, float]:
    """Return the intent and confidence of a parsed message.

    ``nlu_fallback`` (the classifier would not answer) is ``(None, 0.0)``: no topic is
    trusted, and the knowledge base answers only by a clear margin.
    """
    intent = message.get("intent") or {}
    name, confidence = intent.get("name"), float(intent.get("confidence") or 0.0)
    if name == _FALLBACK:
        return None, 0.0
    return name, confidence


def out_of_scope_won(message: dict[str, Any]) -> bool:
    """Whether the classifier fell back because its trained ``out_of_scope`` intent won.

    Then no entry answers, however similar: the resident is asked or handed to a person.
    """
    if (message.get("intent") or {}).get("name") != _FALLBACK:
        return False
    ranked = [i.get("name") for i in message.get("intent_ranking") or [] if i.get("name")]
    real = [name for name in ranked if name != _FALLBACK]
    return bool(real) and real[0] == _OUT_OF_SCOPE


def choice_payload(choice: str) -> str:
    """The message a clarifying question's button sends for ``choice`` (an entry id or else)."""
    return f"/{_CHOOSE}" + json.dumps({_CHOICE: choice}, separators=(",", ":"))


def _chosen(tracker: Tracker, reply: bool) -> str | None:
    """The entry id (or :data:`SOMETHING_ELSE`) the latest message chose, if it is a choice.

    A tapped button names its entry; a typed number counts only when the message is the
    ``reply`` right after the clarifying question.
    """
    message = tracker.latest_message
    if (message.get("intent") or {}).get("name") == _CHOOSE:
        values = [
            e.get("value") for e in message.get("entities") or [] if e.get("entity") == _CHOICE
        ]
        return str(values[0]) if values and values[0] else SOMETHING_ELSE
    options = tracker.get_slot(_OPTIONS) or []
    typed = _NUMBER.match(str(message.get("text") or "").strip())
    if not reply or not options or typed is None:
        return None
    number = int(typed.group(1))
    if 1 <= number <= len(options):
        return str(options[number - 1])
    return SOMETHING_ELSE if number == len(options) + 1 else None


def _asked_no_more(tracker: Tracker) -> list[EventType]:
    """Forget the last clarifying question (its options and message), if one is kept."""
    kept = [name for name in (_OPTIONS, _QUESTION) if tracker.get_slot(name)]
    return [SlotSet(name, None) for name in kept]


class ActionAnswer(Action):
    """Utter the knowledge-base entry that answers the latest message, or hand off.

    Args:
        knowledge_base: The knowledge base (default: the process-wide one, whose encoder is
            loaded and run once here: rasa-sdk creates the action at start-up, so the first
            resident does not wait for it).
        clock: Returns the current time (UTC).
    """

    reply_to_question = False
    """Whether this action runs only on the reply right after a clarifying question."""

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
        """Answer, ask which topic the resident means, or follow up with the handoff action."""
        kb = self._kb or await shared_knowledge_base()
        now = self._clock()
        choice = _chosen(tracker, self.reply_to_question)
        if choice is not None:
            return await self._answer_choice(kb, dispatcher, tracker, choice, now)
        intent, confidence = latest_intent(tracker.latest_message)
        text = tracker.latest_message.get("text")
        index = await kb.refresh()
        # the NLU's embedding of the message, when it sent one: no second encoding here
        vector = message_embedding(tracker.latest_message)
        if vector is None:
            vector = await asyncio.to_thread(index.encode_message, text)
        found = None
        if not out_of_scope_won(tracker.latest_message):
            found = await kb.select(intent, confidence, text, None, now, vector)
        if found is not None:
            return self._answer(dispatcher, tracker, found[0])
        options = index.alternatives(vector, now)
        if not options or language_of(tracker.get_slot(LANGUAGE)) != "en":
            # entries' titles are English only: a Welsh conversation goes to a Welsh speaker
            return [FollowupAction(HANDOFF_ACTION)]
        await clarifications.count(kb.redis, kb.namespace, now.date())
        return [
            SlotSet(_OPTIONS, [option.entry.id for option in options]),
            SlotSet(_QUESTION, redact(str(text or ""))),
            FollowupAction(CLARIFY_ACTION),
        ]

    @staticmethod
    def _answer(
        dispatcher: CollectingDispatcher, tracker: Tracker, entry: Entry
    ) -> list[EventType]:
        channel = tracker.get_latest_input_channel()
        answer = entry.answer_in(language_of(tracker.get_slot(LANGUAGE)), channel)
        if answer is None:
            return [FollowupAction(HANDOFF_ACTION)]
        dispatcher.utter_message(text=answer)
        return [SlotSet("kb_entry", entry.id), *_asked_no_more(tracker)]

    async def _answer_choice(
        self,
        kb: KnowledgeBase,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        choice: str,
        now: datetime,
    ) -> list[EventType]:
        """Answer the chosen entry (kept as a candidate for editors), or hand off."""
        entry = None if choice == SOMETHING_ELSE else await kb.live(choice)
        if entry is None or not entry.live_at(now):
            return [*_asked_no_more(tracker), FollowupAction(HANDOFF_ACTION)]
        question = tracker.get_slot(_QUESTION)
        if question and choice in (tracker.get_slot(_OPTIONS) or []):
            await ReviewQueue(kb.redis, kb.namespace).record_choice(
                tracker.sender_id, question, entry.topic, entry.id
            )
        return self._answer(dispatcher, tracker, entry)


class ActionChoice(ActionAnswer):
    """The reply right after a clarifying question: the number of an option, or a new question.

    Only the rules after ``action_kb_clarify`` run it (``data/rules.yml``). A number picks
    that option (one more than the options: something else); anything else is answered as
    ``action_answer`` would.
    """

    reply_to_question = True

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_kb_choice"


class ActionClarify(Action):
    """Ask which of the offered topics (slot ``kb_options``, set by ``action_answer``) is meant.

    Args:
        knowledge_base: The knowledge base (default: the process-wide one).
    """

    def __init__(self, knowledge_base: KnowledgeBase | None = None) -> None:
        self._kb = knowledge_base

    def name(self) -> str:
        """Return the action's name in the domain."""
        return CLARIFY_ACTION

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        """Utter ``utter_kb_clarify`` with the entries' titles, or hand off without options."""
        kb = self._kb or await shared_knowledge_base()
        entries = [await kb.live(str(i)) for i in tracker.get_slot(_OPTIONS) or []]
        offered = [e for e in entries if e is not None][: len(_COUNTS)]
        if not offered:
            return [FollowupAction(HANDOFF_ACTION)]
        values = {f"title_{n}": e.title or e.id.replace("-", " ") for n, e in enumerate(offered, 1)}
        values |= {f"payload_{n}": choice_payload(e.id) for n, e in enumerate(offered, 1)}
        dispatcher.utter_message(
            response="utter_kb_clarify",
            offered=_COUNTS[len(offered)],
            payload_else=choice_payload(SOMETHING_ELSE),
            **values,
        )
        # wait for the resident's choice (no policy is asked what follows this follow-up)
        return [SlotSet(_OPTIONS, [e.id for e in offered]), FollowupAction("action_listen")]
