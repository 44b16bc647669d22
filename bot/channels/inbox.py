"""The durable inbox: verified messages are queued in Redis before the provider hears 200.

:meth:`Inbox.accept` de-duplicates on (channel, account, message id) and appends to the stream
``{ns}:inbox`` in one Lua script, so a provider's retry is never queued twice and a queued
message is never forgotten by the de-duplication. The account is part of the key because
Telegram's ``update_id`` is only unique per bot.

:class:`InboxWorker` reads the stream through the consumer group ``workers``, hands each
message to a handler that returns the replies, then queues the replies in the outbox and
acknowledges the entry in one transaction: a crash before that point leaves the entry pending
and it is processed again (by the same consumer on restart, or by another one after
``claim_idle_ms``); a crash after it cannot produce the replies twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import redis.asyncio

from bot.channels.base import InboundMessage, OutboundMessage
from bot.channels.outbox import outbox_fields
from bot.channels.stream import Entry, GroupReader, ensure_group, lanes
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


class InboxWorker:
    """Processes the inbox stream as one consumer of the group.

    Args:
        client: Asyncio Redis client (decoded strings).
        handler: Turns a message into replies (Rasa's ``on_new_message`` in the server).
        namespace: Key namespace.
        consumer: This worker's name; keep it stable across restarts so the worker picks up
            its own unacknowledged entries first.
        claim_idle_ms: Entries another consumer left unacknowledged this long are taken over
            (looked for every ``claim_idle_ms / 4``, not on every read: one Redis round trip
            fewer per batch).
        block_ms: How long one read waits for new entries.
        batch: Entries read at a time.
        max_failures: A message whose handler fails this often goes to ``{ns}:inbox:dead``.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        handler: Handler,
        namespace: str = "cr",
        *,
        consumer: str = "worker",
        claim_idle_ms: int = 60_000,
        block_ms: int = 1000,
        batch: int = 16,
        max_failures: int = 5,
    ) -> None:
        self.inbox = Inbox(client, namespace)
        self.reader = GroupReader(
            client,
            self.inbox.stream,
            GROUP,
            consumer,
            claim_idle_ms=claim_idle_ms,
            block_ms=block_ms,
            batch=batch,
        )
        self.redis = client
        self.handler = handler
        self.namespace = namespace
        self.max_failures = max_failures
        self.outbox = key(namespace, "outbox")
        self._failures = key(namespace, "inbox", "failures")

    async def run(self, stop: asyncio.Event) -> None:
        """Process until ``stop`` is set; Redis errors are logged and retried."""
        await self.inbox.ensure_group()
        while not stop.is_set():
            try:
                await self.run_once()
            except redis.RedisError:
                _log.exception("inbox worker: Redis error; retrying in 1 s")
                await asyncio.sleep(1)

    async def run_once(self, block: bool = True) -> int:
        """Process own pending entries (first call), stale ones of others, then new ones."""
        done = await self._process(await self.reader.backlog())
        if done:
            return done
        return await self._process(await self.reader.new(block))

    async def _process(self, entries: Sequence[Entry]) -> int:
        # conversations run concurrently; one conversation's messages stay in order
        by_conversation, deleted = lanes(entries, "conversation")
        await self.reader.ack(deleted)  # deleted while pending: nothing left to do
        done = await asyncio.gather(*(self._lane(lane) for lane in by_conversation.values()))
        return sum(done)

    async def _lane(self, lane: list[tuple[str, dict[str, str]]]) -> int:
        done = 0
        for entry_id, fields in lane:
            if not await self._handle(entry_id, fields):
                # keep order: the rest stay pending and are claimed again after claim_idle_ms
                break
            done += 1
        return done

    async def _handle(self, entry_id: str, fields: dict[str, str]) -> bool:
        try:
            message = InboundMessage.from_json(fields["message"])
        except (KeyError, TypeError, ValueError):
            _log.error("inbox entry %s is unreadable: moved to the dead letters", entry_id)
            await self._finish(entry_id, [], dead=fields)
            return False
        try:
            replies = list(await self.handler(message))
        except asyncio.CancelledError:
            raise
        except Exception:
            failures = await self.redis.hincrby(self._failures, entry_id, 1)
            _log.exception(
                "%s: processing %s failed (%d time(s))", message.channel, entry_id, failures
            )
            if failures >= self.max_failures:
                await self._finish(entry_id, [], dead=fields)
            return False
        rows = [
            outbox_fields(
                message.conversation_id, message.channel, message.account, message.sender, reply
            )
            for reply in replies
        ]
        await self._finish(entry_id, rows)
        return True

    async def _finish(
        self, entry_id: str, replies: list[dict[str, str]], dead: dict[str, str] | None = None
    ) -> None:
        # replies, acknowledgement and removal in one transaction: all or nothing
        async with self.redis.pipeline(transaction=True) as pipe:
            for row in replies:
                pipe.xadd(self.outbox, row)
            if dead is not None:
                pipe.xadd(self.inbox.dead, {**dead, "entry": entry_id})
            pipe.xack(self.inbox.stream, GROUP, entry_id)
            pipe.xdel(self.inbox.stream, entry_id)
            pipe.hdel(self._failures, entry_id)
            await pipe.execute()
