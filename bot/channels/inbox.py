"""The durable inbox: verified messages are queued in Redis before the provider hears 200.

:meth:`Inbox.accept` de-duplicates on (channel, account, message id) and appends to the stream
``{ns}:inbox`` in one Lua script, so a provider's retry is never queued twice and a queued
message is never forgotten by the de-duplication. The account is part of the key because
Telegram's ``update_id`` is only unique per bot.

:class:`InboxWorker` reads the stream through the consumer group ``workers``, hands each
message to a handler that returns the replies, then queues the replies in the outbox and
acknowledges the entry in one transaction: a crash before that point leaves the entry pending
and it is processed again (by another consumer once this one's heartbeat stops, see
:mod:`bot.channels.stream`); a crash after it cannot produce the replies twice. Each
conversation has a lane of its own, so a slow or failing handler for one resident never
delays another; a message the handler keeps failing on (or that cannot be read) goes to
``{ns}:inbox:dead`` with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import redis.asyncio

from bot.channels.base import InboundMessage, OutboundMessage
from bot.channels.held import HeldMessages
from bot.channels.outbox import outbox_fields
from bot.channels.stream import (
    Fields,
    GroupReader,
    RetryPolicy,
    RetryState,
    StreamWorker,
    ensure_group,
    raise_first_error,
    until_saved,
)
from bot.channels.window import KEEP_SECONDS, window_key
from bot.keys import key

__all__ = ["DEDUPE_SECONDS", "GROUP", "Handler", "Inbox", "InboxWorker"]

_log = logging.getLogger(__name__)

GROUP = "workers"
DEDUPE_SECONDS = 7 * 24 * 3600
"""How long a message id is remembered (providers retry for hours, not days)."""

Handler = Callable[[InboundMessage], Awaitable[Sequence[OutboundMessage]]]
"""Processes one message and returns the replies to send."""

_ACCEPT = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return false end
local id = redis.call('XADD', KEYS[2], '*', 'conversation', ARGV[5], 'message', ARGV[3])
redis.call('SET', KEYS[1], id, 'XX', 'KEEPTTL')
redis.call('ZADD', KEYS[3], 'GT', ARGV[4], ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[6])
return id
"""


class Inbox:
    """The inbound stream of one namespace.

    Args:
        client: Asyncio Redis client (decoded strings).
        namespace: Key namespace.
        dedupe_seconds: How long message ids are remembered.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        namespace: str = "cr",
        *,
        dedupe_seconds: int = DEDUPE_SECONDS,
    ) -> None:
        self.redis = client
        self.namespace = namespace
        self.stream = key(namespace, "inbox")
        self.dead = key(namespace, "inbox", "dead")
        self.dedupe_seconds = dedupe_seconds
        self._accept = client.register_script(_ACCEPT)

    def seen_key(self, message: InboundMessage) -> str:
        """The de-duplication key of a message."""
        return key(
            self.namespace, "inbox", "seen", message.channel, message.account, message.message_id
        )

    async def ensure_group(self) -> None:
        """Create the stream and its consumer group if they do not exist."""
        await ensure_group(self.redis, self.stream, GROUP)

    async def accept(self, messages: Iterable[InboundMessage]) -> list[str]:
        """Queue every message not seen before; return the new stream ids.

        Raises:
            redis.RedisError: Redis failed; the webhook must not answer 200.
        """
        queued = []
        for message in messages:
            entry = await self._accept(
                keys=[self.seen_key(message), self.stream, window_key(self.namespace)],
                args=[
                    "queued",
                    self.dedupe_seconds,
                    message.to_json(),
                    message.received_at,
                    message.conversation_id,
                    time.time() - KEEP_SECONDS,
                ],
            )
            if entry:
                queued.append(str(entry))
            else:
                _log.info("%s: duplicate message %s ignored", message.channel, message.message_id)
        return queued

    async def pending_count(self) -> int:
        """Entries delivered to a worker but not yet acknowledged."""
        summary: Any = await self.redis.xpending(self.stream, GROUP)
        return int(summary["pending"])


class InboxWorker(StreamWorker):
    """Processes the inbox stream as one consumer of the group, each conversation in a lane.

    Each message first releases what was held for its conversation's closed window
    (:meth:`bot.channels.held.HeldMessages.release`), so it goes before the replies.

    Args:
        client: Asyncio Redis client (decoded strings).
        handler: Turns a message into replies (Rasa's ``on_new_message`` in the server).
        namespace: Key namespace.
        consumer: This worker's name (:func:`bot.channels.stream.consumer_name`).
        max_failures: A message the handler fails on this often goes to ``{ns}:inbox:dead``.
        give_up_after: Seconds after the first failure after which it goes there anyway.
        base_delay: First wait before the handler is tried again (doubles each time).
        max_delay: Longest wait between tries.
        claim_idle_ms: Entries any consumer left unacknowledged this long are taken over.
        block_ms: How long one read waits for new entries.
        batch: Entries read at a time.
        dead_after: Seconds without a heartbeat after which a consumer is taken over.
        max_in_flight: Entries held at most.
        sleep: Waits between tries (tests pass a fake).
        clock: Unix seconds (for the retry budget).
    """

    role = "inbox"

    def __init__(
        self,
        client: redis.asyncio.Redis,
        handler: Handler,
        namespace: str = "cr",
        *,
        consumer: str = "worker",
        max_failures: int = 5,
        give_up_after: float = 300.0,
        base_delay: float = 1.0,
        max_delay: float = 30.0,
        claim_idle_ms: int = 60_000,
        block_ms: int = 1000,
        batch: int = 16,
        dead_after: float = 30.0,
        max_in_flight: int = 1000,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.inbox = Inbox(client, namespace)
        self.redis = client
        self.handler = handler
        self.namespace = namespace
        self.policy = RetryPolicy(
            base_delay=base_delay,
            max_delay=max_delay,
            give_up_after=give_up_after,
            max_attempts=max_failures,
            max_errors=max_failures,
        )
        self.sleep = sleep
        self.clock = clock
        self.outbox = key(namespace, "outbox")
        self.held = HeldMessages(client, namespace, clock)
        reader = GroupReader(
            client,
            self.inbox.stream,
            GROUP,
            consumer,
            claim_idle_ms=claim_idle_ms,
            block_ms=block_ms,
            batch=batch,
            dead_after=dead_after,
        )
        super().__init__(reader, "conversation", max_in_flight=max_in_flight)

    async def process(self, entry_id: str, fields: Fields) -> None:
        """Run one message through the handler, retrying in its lane, then finish it."""
        try:
            message = InboundMessage.from_json(fields["message"])
        except Exception as exc:  # any value that cannot be read: never stop the worker
            _log.error("inbox entry %s is unreadable: moved to the dead letters", entry_id)
            reason = f"unreadable entry: {type(exc).__name__}: {exc}"
            await self._dead(entry_id, fields, reason, await self.retry_state(entry_id))
            return
        state = await self.retry_state(entry_id)
        if state.due > self.clock():  # scheduled before a restart or by another worker
            await self.sleep(state.due - self.clock())
        # the message opened the window: what was held for it goes now, queued ahead of the
        # replies to it (a Redis error here retries the entry, releasing before replying)
        await self.held.release(message.conversation_id, opened=True)
        while True:
            try:
                rows = [
                    outbox_fields(
                        message.conversation_id,
                        message.channel,
                        message.account,
                        message.sender,
                        reply,
                    )
                    for reply in await self.handler(message)
                ]
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                state = await self.retries.failed(entry_id, state, self.clock())
                _log.exception(
                    "%s: processing %s failed (%d time(s))",
                    message.channel,
                    entry_id,
                    state.attempts,
                )
                if self.policy.exhausted(state, self.clock()):
                    reason = f"failed {state.attempts} time(s): {type(exc).__name__}: {exc}"
                    await self._dead(entry_id, fields, reason, state)
                    return
                delay = self.policy.delay(state.attempts)
                await self.retries.schedule(entry_id, self.clock() + delay)
                await self.sleep(delay)
                continue
            break
        await until_saved(lambda: self._finish(entry_id, state, rows), "inbox")

    async def _dead(self, entry_id: str, fields: Fields, reason: str, state: RetryState) -> None:
        # the fields of the webhook's own dead letters (bot.channels.webhook.dead_letter)
        dead = {**fields, "entry": entry_id, "reason": reason[:500], "at": str(self.clock())}
        await until_saved(lambda: self._finish(entry_id, state, [], dead=dead), "inbox")

    async def _finish(
        self,
        entry_id: str,
        state: RetryState,
        replies: list[dict[str, str]],
        dead: dict[str, str] | None = None,
    ) -> None:
        # replies, acknowledgement and removal in one transaction (shared with other lanes'
        # finishes): all or nothing
        def commands(pipe: Any) -> None:
            for row in replies:
                pipe.xadd(self.outbox, row)
            if dead is not None:
                pipe.xadd(self.inbox.dead, dead)
            pipe.xack(self.inbox.stream, GROUP, entry_id)
            pipe.xdel(self.inbox.stream, entry_id)
            self.forget_retries(pipe, entry_id, state)

        raise_first_error(await self.batch.write(commands))
