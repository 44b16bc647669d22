"""The outbox: replies waiting to be sent, retried with backoff, failures kept for agents.

Entries of the stream ``{ns}:outbox`` have the fields ``conversation_id``, ``channel``,
``account``, ``recipient``, ``text``, optional ``tag`` (``HUMAN_AGENT`` or
``template:<name>``, as the agent console writes them) and optional ``message`` (the whole
:class:`OutboundMessage` as JSON, with buttons). :class:`OutboxWorker` sends them through the
channel's adapter: 5xx, timeouts and rate limits are retried with exponential backoff (a
provider's ``Retry-After`` wins); a send that can never succeed (window closed, resident
blocked the account, retries exhausted) is appended to ``{ns}:outbox:failed`` for agents,
never dropped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import redis.asyncio

from bot.channels.base import ChannelAdapter, OutboundMessage, SendResult, Template
from bot.channels.stream import GroupReader, lanes
from bot.channels.window import window_state
from bot.keys import key

__all__ = ["GROUP", "OutboxWorker", "failed_sends", "outbox_fields", "queue_reply"]

_log = logging.getLogger(__name__)

GROUP = "senders"
_HUMAN_AGENT = "HUMAN_AGENT"
_TEMPLATE = "template:"


def outbox_fields(
    conversation_id: str, channel: str, account: str, recipient: str, message: OutboundMessage
) -> dict[str, str]:
    """The stream fields of one reply (readable by the agent console too)."""
    fields = {
        "conversation_id": conversation_id,
        "channel": channel,
        "account": account,
        "recipient": recipient,
        "text": message.text,
        "message": message.to_json(),
    }
    if message.tag:
        fields["tag"] = message.tag
    elif message.template:
        fields["tag"] = _TEMPLATE + message.template.name
    return fields


async def queue_reply(
    client: redis.asyncio.Redis,
    namespace: str,
    conversation_id: str,
    channel: str,
    account: str,
    recipient: str,
    message: OutboundMessage,
) -> str:
    """Append one reply to the outbox; return its stream id."""
    fields = outbox_fields(conversation_id, channel, account, recipient, message)
    entry: str = await client.xadd(key(namespace, "outbox"), fields)
    return entry


def message_of(fields: Mapping[str, str]) -> OutboundMessage:
    """The message of an outbox entry (full JSON, or text and tag from the agent console)."""
    if fields.get("message"):
        return OutboundMessage.from_json(fields["message"])
    tag = fields.get("tag") or None
    if tag and tag.startswith(_TEMPLATE):
        return OutboundMessage(fields.get("text", ""), template=Template(tag[len(_TEMPLATE) :]))
    return OutboundMessage(fields.get("text", ""), tag=tag)


async def failed_sends(
    client: redis.asyncio.Redis, namespace: str = "cr", count: int = 100
) -> list[dict[str, str]]:
    """The most recent failed sends, newest first (for the agent console)."""
    rows: Any = await client.xrevrange(key(namespace, "outbox", "failed"), count=count)
    return [{"id": entry_id, **fields} for entry_id, fields in rows]


class OutboxWorker:
    """Sends the outbox as one consumer of the group ``senders``.

    Args:
        client: Asyncio Redis client (decoded strings).
        adapters: Adapter per channel name (``whatsapp`` and ``sms`` may share one).
        namespace: Key namespace.
        consumer: This worker's name (stable across restarts).
        max_attempts: Sends tried before giving up and surfacing the failure.
        base_delay: First backoff in seconds (doubles each attempt, with jitter).
        max_delay: Longest wait between attempts.
        claim_idle_ms: Entries another consumer left unacknowledged this long are taken over
            (looked for every ``claim_idle_ms / 4``, not on every read).
        block_ms: How long one read waits for new entries.
        batch: Entries read at a time (their conversations are sent concurrently).
        sleep: Waits between attempts (tests pass a fake).
        clock: Unix seconds (for the messaging windows).
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        adapters: Mapping[str, ChannelAdapter],
        namespace: str = "cr",
        *,
        consumer: str = "sender",
        max_attempts: int = 6,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        claim_idle_ms: int = 60_000,
        block_ms: int = 1000,
        batch: int = 16,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = client
        self.adapters = dict(adapters)
        self.namespace = namespace
        self.consumer = consumer
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.clock = clock
        self.stream = key(namespace, "outbox")
        self.failed = key(namespace, "outbox", "failed")
        self.reader = GroupReader(
            client,
            self.stream,
            GROUP,
            consumer,
            claim_idle_ms=claim_idle_ms,
            block_ms=block_ms,
            batch=batch,
        )

    async def ensure_group(self) -> None:
        """Create the stream and its consumer group if they do not exist."""
        await self.reader.ensure_group()

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set; Redis errors are logged and retried."""
        await self.ensure_group()
        while not stop.is_set():
            try:
                await self.run_once()
            except redis.RedisError:
                _log.exception("outbox worker: Redis error; retrying in 1 s")
                await asyncio.sleep(1)

    async def run_once(self, block: bool = True) -> int:
        """Send own pending entries (first call), stale ones of others, then new ones."""
        entries = await self.reader.backlog() or await self.reader.new(block)
        # conversations are sent concurrently; one conversation's replies stay in order
        by_conversation, deleted = lanes(entries, "conversation_id")
        await self.reader.ack(deleted)
        await asyncio.gather(*(self._lane(lane) for lane in by_conversation.values()))
        return len(entries)

    async def _lane(self, lane: list[tuple[str, dict[str, str]]]) -> None:
        for entry_id, fields in lane:
            await self.deliver(entry_id, fields)

    def backoff(self, attempt: int, result: SendResult) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if result.retry_after is not None:
            return min(result.retry_after, self.max_delay * 5)
        delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return float(delay * random.uniform(0.8, 1.0))  # noqa: S311 - jitter, not security

    async def _for_window(
        self, fields: Mapping[str, str], adapter: ChannelAdapter, message: OutboundMessage
    ) -> OutboundMessage | SendResult:
        state = await window_state(
            self.redis, fields["conversation_id"], namespace=self.namespace, now=self.clock()
        )
        if state is None or state["open"]:
            return message
        channel = fields["channel"]
        if channel == "whatsapp" and message.template is None:
            template = adapter.template_for(fields["account"])
            if template is None:
                return SendResult(
                    "failed", error="WhatsApp 24-hour window closed and no template configured"
                )
            return OutboundMessage("", template=template)
        if channel == "messenger":
            until = state.get("human_agent_until")
            if until and datetime.fromisoformat(until).timestamp() > self.clock():
                # agents may answer up to 7 days after the resident's last message
                return message if message.tag else replace(message, tag=_HUMAN_AGENT)
            return SendResult("failed", error="Messenger window closed (over 7 days)")
        return message

    async def deliver(self, entry_id: str, fields: Mapping[str, str]) -> SendResult:
        """Send one entry with retries; acknowledge it, surfacing a failure."""
        channel = fields.get("channel", "")
        adapter = self.adapters.get(channel)
        result: SendResult
        if adapter is None:
            result = SendResult("failed", error=f"no adapter for channel {channel!r}")
        else:
            try:
                checked = await self._for_window(fields, adapter, message_of(fields))
            except (KeyError, TypeError, ValueError) as exc:
                checked = SendResult("failed", error=f"unreadable entry ({type(exc).__name__})")
            if isinstance(checked, SendResult):
                result = checked
            else:
                result = await self._send(adapter, fields, checked, entry_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            if not result.ok:
                pipe.xadd(
                    self.failed,
                    {
                        **fields,
                        "entry": entry_id,
                        "error": result.error,
                        "code": result.code,
                        "failed_at": str(self.clock()),
                    },
                )
            pipe.xack(self.stream, GROUP, entry_id)
            pipe.xdel(self.stream, entry_id)
            await pipe.execute()
        if not result.ok:
            _log.warning(
                "%s: send %s failed for good: %s %s", channel, entry_id, result.error, result.code
            )
        return result

    async def _send(
        self,
        adapter: ChannelAdapter,
        fields: Mapping[str, str],
        message: OutboundMessage,
        entry_id: str,
    ) -> SendResult:
        result = SendResult("failed", error="not attempted")
        for attempt in range(1, self.max_attempts + 1):
            result = await adapter.send(
                fields["account"], fields["recipient"], message, channel=fields["channel"]
            )
            if result.outcome != "retry":
                return result
            if attempt < self.max_attempts:
                delay = self.backoff(attempt, result)
                _log.info(
                    "%s: send failed (%s), attempt %d; retrying in %.1f s",
                    fields["channel"],
                    result.error,
                    attempt,
                    delay,
                )
                # re-claim to reset the idle time: no other worker takes it over mid-backoff
                await self.redis.xclaim(
                    self.stream, GROUP, self.consumer, 0, [entry_id], justid=True
                )
                await self.sleep(delay)
        return SendResult(
            "failed",
            error=f"gave up after {self.max_attempts} attempts: {result.error}",
            code=result.code,
        )
