"""A Rasa event broker that keeps open handoff cases up to date.

While a person has a conversation, the bot is paused, but Rasa still reads and stores what the
resident writes. This broker sees every stored event; a resident's message in a conversation
with an open case is added to that case (and a message Rasa recognises as a safeguarding worry
raises the case to the top priority), so the agent sees it at once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.utils.endpoints import EndpointConfig

from bot.handoff.queue import HandoffQueue
from bot.keys import namespace
from bot.redis_conn import connect_async

__all__ = ["HandoffEventBroker"]

logger = logging.getLogger(__name__)


class HandoffEventBroker(EventBroker):
    """Adds residents' messages to their open handoff case.

    Configured in ``endpoints.yml`` as ``event_broker: {type: bot.handoff.broker.HandoffEventBroker,
    url: ${REDIS_URL}}``.
    """

    def __init__(self, queue: HandoffQueue) -> None:
        self.queue = queue
        self._pending: set[asyncio.Task[None]] = set()

    @classmethod
    async def from_endpoint_config(
        cls, broker_config: EndpointConfig, event_loop: asyncio.AbstractEventLoop | None = None
    ) -> HandoffEventBroker:
        """Connect to the Redis at ``url`` (fails at start-up when it does not answer)."""
        client = await connect_async(broker_config.url)
        return cls(HandoffQueue(client, namespace()))

    def publish(self, event: dict[str, Any]) -> None:
        """Handle one stored event (called by Rasa's tracker store)."""
        if event.get("event") != "user":
            return
        task = asyncio.get_running_loop().create_task(self.handle_user_message(event))
        self._pending.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("could not add a message to its handoff case", exc_info=task.exception())

    async def handle_user_message(self, event: dict[str, Any]) -> None:
        """Add a resident's message to the conversation's open case, if it has one."""
        conversation_id = str(event.get("sender_id"))
        case_id = await self.queue.case_for(conversation_id)
        if case_id is None:
            return
        record = await self.queue.get(case_id)
        sent_at = datetime.fromtimestamp(float(event.get("timestamp") or 0), UTC)
        if record is None or sent_at <= datetime.fromisoformat(record.created_at):
            return  # the message that caused the handoff is already in its transcript
        await self.queue.append_message(conversation_id, "resident", str(event.get("text") or ""))
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if intent == "safeguarding":
            await self.queue.escalate(case_id, "safeguarding")

    async def close(self) -> None:
        """Wait for messages still being added, then close the connection."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self.queue.redis.close()
