"""A Rasa event broker that keeps open handoff cases up to date.

While a person has a conversation, the bot is paused, but Rasa still reads and stores what the
resident writes. This broker sees every stored event; a resident's message in a conversation
with an open case is added to that case (and a message Rasa recognises as a safeguarding worry
raises the case to the top priority), so the agent sees it at once; a photo, voice note or
shared contact reads as "[photo]" etc. (:mod:`bot.handoff.attachments`). What the bot said
after the case was opened (its holding reply) is added too, so the agent reads what the
resident was told.
It also counts each day's conversations (residents who wrote that day) for the containment
figure of the reports.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.utils.endpoints import EndpointConfig

from bot.handoff.attachments import resident_text
from bot.handoff.questions import UnansweredQuestions
from bot.handoff.queue import HandoffQueue
from bot.handoff.record import HandoffRecord
from bot.keys import namespace
from bot.redis_conn import connect_async

__all__ = ["HandoffEventBroker"]

logger = logging.getLogger(__name__)

# The "seen today" markers hold a sender id, so they live only until the day is over; the
# daily counts are anonymous and kept for year-on-year reporting.
_SEEN_SECONDS = 2 * 24 * 3600
_COUNT_SECONDS = 800 * 24 * 3600
# Marker and count in one step, so a repeated run (the Redis client repeats a command whose
# reply was lost) finds the marker and does not count the resident twice.
_COUNT_ONCE = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""


class HandoffEventBroker(EventBroker):
    """Adds residents' messages to their open handoff case.

    Configured in ``endpoints.yml`` as ``event_broker: {type: bot.handoff.broker.HandoffEventBroker,
    url: ${REDIS_URL}}``.
    """

    def __init__(self, queue: HandoffQueue) -> None:
        self.queue = queue
        self.questions = UnansweredQuestions(queue.redis, queue.namespace)
        self._pending: set[asyncio.Task[None]] = set()
        self._count_once = queue.redis.register_script(_COUNT_ONCE)

    @classmethod
    async def from_endpoint_config(
        cls, broker_config: EndpointConfig, event_loop: asyncio.AbstractEventLoop | None = None
    ) -> HandoffEventBroker:
        """Connect to the Redis at ``url`` (fails at start-up when it does not answer)."""
        client = await connect_async(broker_config.url)
        return cls(HandoffQueue(client, namespace()))

    def publish(self, event: dict[str, Any]) -> None:
        """Handle one stored event (called by Rasa's tracker store)."""
        handlers = {"user": self.handle_user_message, "bot": self.handle_bot_message}
        handler = handlers.get(str(event.get("event")))
        if handler is None:
            return
        task = asyncio.get_running_loop().create_task(handler(event))
        self._pending.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("could not add a message to its handoff case", exc_info=task.exception())

    async def handle_user_message(self, event: dict[str, Any]) -> None:
        """Count the conversation, and add the message to its open case, if it has one.

        The message that opened an unanswered case is kept, redacted, for the reports
        (:class:`~bot.handoff.questions.UnansweredQuestions`).
        """
        conversation_id = str(event.get("sender_id"))
        sent_at = datetime.fromtimestamp(float(event.get("timestamp") or 0), UTC)
        text = resident_text(event)  # a photo or contact reads "[photo]", "[contact: ...]"
        await self.count_conversation(conversation_id, sent_at)
        record = await self._open_case(conversation_id)
        if record is None:
            return
        if sent_at <= datetime.fromisoformat(record.created_at):
            await self.questions.record(record, text)  # the question that opened the case
            return
        case_id = record.case_id
        await self.queue.append_message(conversation_id, "resident", text)
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if intent == "safeguarding":
            await self.queue.escalate(case_id, "safeguarding")

    async def handle_bot_message(self, event: dict[str, Any]) -> None:
        """Add what the bot said to the conversation's open case (the holding reply)."""
        conversation_id = str(event.get("sender_id"))
        sent_at = datetime.fromtimestamp(float(event.get("timestamp") or 0), UTC)
        text = str(event.get("text") or "")
        if text and await self._case_opened_before(conversation_id, sent_at) is not None:
            await self.queue.append_message(conversation_id, "bot", text)

    async def _case_opened_before(self, conversation_id: str, sent_at: datetime) -> str | None:
        """The conversation's open case, if it was opened before ``sent_at``.

        Messages from before the handoff are already in the case's transcript.
        """
        record = await self._open_case(conversation_id)
        if record is None or sent_at <= datetime.fromisoformat(record.created_at):
            return None
        return record.case_id

    async def _open_case(self, conversation_id: str) -> HandoffRecord | None:
        case_id = await self.queue.case_for(conversation_id)
        return None if case_id is None else await self.queue.get(case_id)

    async def count_conversation(self, conversation_id: str, sent_at: datetime) -> None:
        """Add one to ``{ns}:stats:conversations:{day}`` on a resident's first message that day."""
        day = sent_at.date().isoformat()
        prefix = f"{self.queue.namespace}:stats"
        await self._count_once(
            keys=[f"{prefix}:seen:{day}:{conversation_id}", f"{prefix}:conversations:{day}"],
            args=[_SEEN_SECONDS, _COUNT_SECONDS],
        )

    async def flush(self) -> None:
        """Wait until the events published so far have been handled."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def close(self) -> None:
        """Wait for messages still being added, then close the connection."""
        await self.flush()
        await self.queue.redis.close()
