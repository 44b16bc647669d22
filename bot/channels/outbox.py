"""The outbox: replies waiting to be sent, retried with backoff, failures kept for agents.

Entries of the stream ``{ns}:outbox`` have the fields ``conversation_id``, ``channel``,
``account``, ``recipient``, ``text``, optional ``tag`` (``HUMAN_AGENT`` or
``template:<name>``, as the agent console writes them), optional ``message`` (the whole
:class:`OutboundMessage` as JSON, with buttons) and optional ``hold`` (seconds: a WhatsApp
text whose window closed before the send is held, :class:`bot.channels.held.Holder`, and the
template queued once, instead of the text being swapped for the template and lost; the
:class:`~bot.channels.held.HeldMessages` loop beside this worker queues it again once the
resident writes).
:class:`OutboxWorker` sends them through the channel's adapter, each conversation in a lane of
its own: 5xx, timeouts and rate limits are retried with exponential backoff (a provider's
``Retry-After`` wins) for up to ``give_up_after`` seconds without delaying any other
conversation; a send that can never succeed (window closed, resident blocked the account,
retries given up) is appended to ``{ns}:outbox:failed`` for agents, never dropped, and its
delivery state recorded (:mod:`bot.channels.delivery`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import redis.asyncio
from redis.exceptions import NoScriptError

from bot.channels import delivery
from bot.channels.base import ChannelAdapter, OutboundMessage, SendResult, Template
from bot.channels.delivery import Call
from bot.channels.held import Holder
from bot.channels.stream import (
    Fields,
    GroupReader,
    RetryPolicy,
    RetryState,
    StreamWorker,
    raise_first_error,
    until_saved,
)
from bot.channels.window import window_state
from bot.handoff.replies import HUMAN_AGENT_TAG, WHATSAPP_TEMPLATE, reply_options
from bot.keys import key

__all__ = ["GROUP", "OutboxWorker", "failed_sends", "outbox_fields", "queue_reply"]

_log = logging.getLogger(__name__)

GROUP = "senders"
_TEMPLATE = "template:"
_HELD = SendResult("sent", error="held until the resident's window opens again")
"""An entry handed to :class:`Holder`: acknowledged, neither a delivery nor a failure."""


def outbox_fields(
    conversation_id: str,
    channel: str,
    account: str,
    recipient: str,
    message: OutboundMessage,
    *,
    hold_seconds: int | None = None,
) -> dict[str, str]:
    """The stream fields of one reply (readable by the agent console too).

    ``hold_seconds``: held (and kept that long) rather than lost if the window closes first.
    """
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
    if hold_seconds is not None:
        fields["hold"] = str(hold_seconds)
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


class OutboxWorker(StreamWorker):
    """Sends the outbox as one consumer of the group ``senders``, each conversation in a lane.

    A send that gets ``retry`` (5xx, timeout, rate limit) is tried again after a backoff (a
    provider's ``Retry-After`` wins) in its conversation's lane only: other residents' replies
    go on meanwhile, and later replies to the same resident wait for it. Its due time and
    attempts are kept in Redis, so a restart goes on with the same budget. It is given up
    (surfaced in ``{ns}:outbox:failed``) once ``give_up_after`` seconds have passed since its
    first failure; an entry that makes the worker itself raise is given up after
    ``max_errors`` tries.

    Args:
        client: Asyncio Redis client (decoded strings).
        adapters: Adapter per channel name (``whatsapp`` and ``sms`` may share one).
        namespace: Key namespace.
        consumer: This worker's name (:func:`bot.channels.stream.consumer_name`).
        give_up_after: Seconds after a send's first failure with no further attempt.
        max_attempts: Attempts before giving up whatever the time (None: only the time).
        base_delay: First backoff in seconds (doubles each attempt, with jitter).
        max_delay: Longest wait between attempts.
        max_retry_after: Longest provider ``Retry-After`` honoured as asked.
        max_errors: Times an entry may make the worker raise before it is given up.
        claim_idle_ms: Entries any consumer left unacknowledged this long are taken over.
        block_ms: How long one read waits for new entries.
        batch: Entries read at a time.
        dead_after: Seconds without a heartbeat after which a consumer is taken over.
        max_in_flight: Entries held at most.
        sleep: Waits between attempts (tests pass a fake).
        clock: Unix seconds (for the messaging windows and the retry budget).
    """

    role = "outbox"

    def __init__(
        self,
        client: redis.asyncio.Redis,
        adapters: Mapping[str, ChannelAdapter],
        namespace: str = "cr",
        *,
        consumer: str = "sender",
        give_up_after: float = 600.0,
        max_attempts: int | None = None,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        max_retry_after: float = 300.0,
        max_errors: int = 3,
        claim_idle_ms: int = 60_000,
        block_ms: int = 1000,
        batch: int = 16,
        dead_after: float = 30.0,
        max_in_flight: int = 1000,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = client
        self.adapters = dict(adapters)
        self.namespace = namespace
        self.consumer = consumer
        self.policy = RetryPolicy(
            base_delay=base_delay,
            max_delay=max_delay,
            give_up_after=give_up_after,
            max_attempts=max_attempts,
            max_retry_after=max_retry_after,
            max_errors=max_errors,
        )
        self.sleep = sleep
        self.clock = clock
        self.stream = key(namespace, "outbox")
        self.failed = key(namespace, "outbox", "failed")
        self.holder = Holder(client, namespace)
        reader = GroupReader(
            client,
            self.stream,
            GROUP,
            consumer,
            claim_idle_ms=claim_idle_ms,
            block_ms=block_ms,
            batch=batch,
            dead_after=dead_after,
        )
        super().__init__(reader, "conversation_id", max_in_flight=max_in_flight)

    async def _for_window(
        self,
        entry_id: str,
        fields: Mapping[str, str],
        adapter: ChannelAdapter,
        message: OutboundMessage,
    ) -> OutboundMessage | SendResult:
        now = self.clock()
        state = await window_state(
            self.redis, fields["conversation_id"], namespace=self.namespace, now=now
        )
        # the window rules have one owner: what an agent is told is what the outbox does
        options = reply_options(fields["channel"], state, datetime.fromtimestamp(now, UTC))
        if options.free_text or message.template is not None:
            return message  # an approved template may go at any time
        if options.tag == HUMAN_AGENT_TAG:
            return message if message.tag else replace(message, tag=HUMAN_AGENT_TAG)
        if options.tag == WHATSAPP_TEMPLATE:
            if fields.get("hold"):
                await self._hold(entry_id, fields, now)
                return _HELD
            template = adapter.template_for(fields["account"])
            if template is None:
                return SendResult(
                    "failed", error="WhatsApp 24-hour window closed and no template configured"
                )
            return OutboundMessage("", template=template)
        return SendResult("failed", error=options.explanation)

    async def _hold(self, entry_id: str, fields: Mapping[str, str], now: float) -> None:
        # the text waits for the resident's answer; the template asks for it (once)
        invite = outbox_fields(
            fields["conversation_id"],
            fields["channel"],
            fields["account"],
            fields["recipient"],
            OutboundMessage("", template=Template(WHATSAPP_TEMPLATE.removeprefix(_TEMPLATE))),
        )
        await self.holder.hold(
            fields,
            marker=f"outbox:{entry_id}",  # this entry held once, however often it is tried
            ttl=int(fields["hold"]),
            now=now,
            invite=invite,
        )

    async def attempt(self, fields: Mapping[str, str], entry_id: str = "") -> SendResult:
        """Send an entry once (after the window checks); never raises for a bad entry.

        Raises:
            redis.RedisError: Redis failed (the attempt is made again once it answers).
        """
        channel = fields.get("channel", "")
        adapter = self.adapters.get(channel)
        if adapter is None:
            return SendResult("failed", error=f"no adapter for channel {channel!r}")
        try:
            checked = await self._for_window(entry_id, fields, adapter, message_of(fields))
        except (KeyError, TypeError, ValueError) as exc:
            return SendResult("failed", error=f"unreadable entry ({type(exc).__name__})")
        if isinstance(checked, SendResult):
            return checked
        return await adapter.send(
            fields["account"], fields["recipient"], checked, channel=fields["channel"]
        )

    async def process(self, entry_id: str, fields: Fields) -> None:
        """Send one entry, retrying in its lane, then acknowledge it (surfacing a failure)."""
        await self.deliver(entry_id, fields)

    async def deliver(self, entry_id: str, fields: Mapping[str, str]) -> SendResult:
        """Send one entry with retries; acknowledge it, surfacing a failure."""
        state = await self.retry_state(entry_id)
        if state.due > self.clock():  # scheduled before a restart or by another worker
            await self.sleep(state.due - self.clock())
        while True:
            error = False
            try:
                result = await self.attempt(fields, entry_id)
            except (asyncio.CancelledError, redis.RedisError):
                raise
            except Exception as exc:  # a value no check foresaw must not stop the worker
                _log.exception("outbox entry %s made the worker raise", entry_id)
                result = SendResult("retry", error=f"worker error: {type(exc).__name__}: {exc}")
                error = True
            if result.outcome != "retry":
                break
            now = self.clock()
            state = state.after_failure(now, error=error)
            if self.policy.exhausted(state, now):
                # nothing saved: the finish below removes the entry and its retry state
                result = SendResult(
                    "failed",
                    error=f"gave up after {state.attempts} attempts: {result.error}",
                    code=result.code,
                )
                break
            delay = self.policy.delay(state.attempts, result.retry_after)
            # shared with other lanes' writes of this turn of the loop: one round trip
            retry = partial(self.retries.retry_at, entry_id=entry_id, state=state, due=now + delay)
            raise_first_error(await self.batch.write(retry))
            _log.info(
                "%s: send %s failed (%s), attempt %d; retrying in %.1f s",
                fields.get("channel", ""),
                entry_id,
                result.error,
                state.attempts,
                delay,
            )
            await self.sleep(delay)
        await until_saved(lambda: self._finish(entry_id, fields, result, state), "outbox")
        if not result.ok:
            _log.warning(
                "%s: send %s failed for good: %s %s",
                fields.get("channel", ""),
                entry_id,
                result.error,
                result.code,
            )
        return result

    def _delivery(self, entry_id: str, fields: Mapping[str, str], result: SendResult) -> Call:
        conversation = fields.get("conversation_id", "")
        if result.ok:
            # a template with no text of its own (the invite of a hold) is recorded by name:
            # the console matches textless states to replies by time, and would show an agent's
            # held reply queued just before it as sent
            return delivery.sent_call(
                conversation,
                result.provider_id,
                entry=entry_id,
                text=fields.get("text") or fields.get("tag", ""),
                namespace=self.namespace,
            )
        return delivery.failed_call(
            conversation,
            entry=entry_id,
            error=result.error,
            code=result.code,
            namespace=self.namespace,
        )

    async def _finish(
        self, entry_id: str, fields: Mapping[str, str], result: SendResult, state: RetryState
    ) -> None:
        # delivery state, surfacing, acknowledgement and removal in one transaction (shared
        # with other lanes' finishes): all or nothing
        recording = self._delivery(entry_id, fields, result)

        def commands(pipe: Any) -> None:
            # a key first: a cluster transaction finds its node by the first command's key
            pipe.xack(self.stream, GROUP, entry_id)
            pipe.xdel(self.stream, entry_id)
            if result is not _HELD:
                delivery.queue(pipe, recording)
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
            self.forget_retries(pipe, entry_id, state)

        if result is _HELD:
            raise_first_error(await self.batch.write(commands))
            return
        acked, deleted, recorded, *rest = await self.batch.write(commands)
        raise_first_error([acked, deleted, *rest])
        if isinstance(recorded, NoScriptError):  # first run, or Redis lost its scripts
            recorded = await _quietly(delivery.record(self.redis, recording))
        if isinstance(recorded, Exception):
            # delivery state is for the agent console: never a reason to send again
            _log.error("outbox: delivery state of %s not recorded: %s", entry_id, recorded)


async def _quietly(work: Awaitable[Any]) -> Any:
    """The result of ``work``, or the exception it raised."""
    try:
        return await work
    except Exception as exc:
        return exc
