"""The webhook steps every channel shares, without a web framework.

size limit (413) → signature check before the body is parsed (403) → read every event on
its own → residents' messages into the durable inbox, delivery receipts into
:mod:`bot.channels.delivery` → 200 (503 when Redis is down, so the provider retries).

A request that passed its signature check is never answered 4xx or 5xx for its content:
the provider would retry it for hours or disable the webhook, and a sibling event in the same
POST would be lost with it. Events that are not residents' messages (statuses, typing,
reads, policy notices, revoked authorisations) are acknowledged and recorded where useful;
a signed body that is still malformed, or a malformed event inside it, is answered 200 and
dead-lettered with its reason in the inbox's dead-letter stream ``{ns}:inbox:dead`` (fields
``channel``, ``reason``, ``body``, ``at``; :func:`dead_letters` lists them for support), never
retried forever. Sharing that stream means the residents' data tools and the retention sweep
(:mod:`bot.residents`) cover these bodies too.

The Rasa input channels (:mod:`bot.channels.rasa`) and the public edge pass requests
through this; tests and benchmarks call it directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import redis
import redis.asyncio

from bot.channels import delivery
from bot.channels.base import ChannelAdapter, InboundMessage, Parsed, header
from bot.channels.inbox import Inbox
from bot.errors import PayloadError, SignatureError
from bot.keys import key
from bot.logs import Tally

__all__ = [
    "DEFAULT_MAX_BODY",
    "Webhook",
    "WebhookResponse",
    "dead_letter",
    "dead_letter_key",
    "dead_letters",
]

_log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 256 * 1024
"""Largest body accepted (providers' messages are a few KB; media arrive as URLs)."""


def dead_letter_key(ns: str) -> str:
    """The inbox's dead letters: signed requests that could not be understood, among others."""
    return key(ns, "inbox", "dead")


async def dead_letter(
    client: redis.asyncio.Redis, ns: str, channel: str, reason: str, raw_body: bytes
) -> str:
    """Keep a verified but malformed request with the reason; return the stream id.

    Raises:
        redis.RedisError: Redis failed (the webhook then answers 503 and the provider retries).
    """
    fields = {
        "channel": channel,
        "reason": reason,
        "body": raw_body.decode("utf-8", "backslashreplace"),
        "at": str(time.time()),
    }
    # no MAXLEN: only signed requests get here, and the retention sweep trims them by age
    entry: Any = await client.xadd(dead_letter_key(ns), fields)
    return str(entry)


async def dead_letters(
    client: redis.asyncio.Redis, ns: str, count: int = 100
) -> list[dict[str, str]]:
    """The most recent dead letters of the inbox, newest first (the webhook's have a ``reason``)."""
    rows: Any = await client.xrevrange(dead_letter_key(ns), count=count)
    return [{"id": entry_id, **fields} for entry_id, fields in rows]


@dataclass(frozen=True)
class WebhookResponse:
    """What to answer the provider.

    Attributes:
        status: HTTP status.
        body: Response body.
        content_type: Its MIME type.
    """

    status: int
    body: str = ""
    content_type: str = "text/plain"


class Webhook:
    """One channel's webhook endpoint.

    Args:
        adapter: The channel's adapter.
        inbox: Where verified messages are queued (its Redis client and namespace are used
            for receipts and dead letters too).
        max_body_bytes: Larger bodies are refused with 413 before anything else.
        refusals: Where refusals are logged, counted per reason per interval (a barrage of
            forged requests is not a line each); by default a :class:`~bot.logs.Tally` of its own.
    """

    def __init__(
        self,
        adapter: ChannelAdapter,
        inbox: Inbox,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        refusals: Tally | None = None,
    ) -> None:
        self.adapter = adapter
        self.inbox = inbox
        self.max_body_bytes = max_body_bytes
        self.refusals = refusals if refusals is not None else Tally(_log)

    def too_large(self, headers: Mapping[str, str]) -> bool:
        """The declared ``Content-Length`` is over the limit (check before reading the body)."""
        declared = header(headers, "Content-Length")
        return declared.isdigit() and int(declared) > self.max_body_bytes

    def challenge(self, query: Mapping[str, str]) -> WebhookResponse:
        """Answer a provider's GET check (Messenger's ``hub.challenge``, X's CRC), else 405."""
        answer = self.adapter.challenge(query)
        if answer is None:
            return WebhookResponse(405, "method not allowed")
        return WebhookResponse(answer.status, answer.body, answer.content_type)

    async def get(self, url: str, headers: Mapping[str, str]) -> WebhookResponse:
        """Handle a GET: a provider's check, or a delivery in the query string (Twilio GET).

        Args:
            url: The full URL as called, query string included.
            headers: Request headers.
        """
        query = urlsplit(url).query
        params = dict(parse_qsl(query, keep_blank_values=True))
        if self.adapter.accepts_get and params and self.adapter.challenge(params) is None:
            # the signature covers the URL with its query; there is no body
            return await self._deliver(url, headers, b"", query.encode())
        return self.challenge(params)

    async def receive(
        self, url: str, headers: Mapping[str, str], raw_body: bytes
    ) -> WebhookResponse:
        """Handle a POST: verify, read, queue; 200 only once everything is in Redis."""
        return await self._deliver(url, headers, raw_body, raw_body)

    async def _deliver(
        self, url: str, headers: Mapping[str, str], signed_body: bytes, content: bytes
    ) -> WebhookResponse:
        channel = self.adapter.channel
        if self.too_large(headers) or len(content) > self.max_body_bytes:
            self.refusals.log(
                logging.WARNING, "%s: body over %d bytes refused", channel, self.max_body_bytes
            )
            return WebhookResponse(413, "payload too large")
        try:
            self.adapter.verify(headers, signed_body, url)
        except SignatureError as exc:
            # never log the body of a request we could not verify
            self.refusals.log(logging.WARNING, "%s: refused: %s", channel, exc.reason)
            return WebhookResponse(403, "forbidden")
        client, ns = self.inbox.redis, self.inbox.namespace
        try:
            parsed = self._read(headers, content)
            if isinstance(parsed, str):
                _log.warning("%s: malformed body dead-lettered: %s", channel, parsed)
                await dead_letter(client, ns, channel, parsed, content)
                return self._ok()
            if parsed.rejected:
                reasons = "; ".join(f"{item.ref}: {item.reason}" for item in parsed.rejected)
                _log.warning("%s: event(s) dead-lettered: %s", channel, reasons)
                await dead_letter(client, ns, channel, reasons, content)
            for receipt in parsed.receipts:
                await delivery.apply(client, receipt, namespace=ns)
            if parsed.ignored:
                _log.info("%s: not messages: %s", channel, ", ".join(parsed.ignored))
            await self._queue(parsed.messages, content)
        except redis.RedisError:
            # no 200: the provider retries; de-duplication and forward-only states make it safe
            _log.exception("%s: cannot record the request", channel)
            return WebhookResponse(503, "unavailable")
        return self._ok()

    async def _queue(self, messages: list[InboundMessage], content: bytes) -> None:
        """Queue the messages; one the inbox cannot store is dead-lettered, not a 500."""
        try:
            await self.inbox.accept(messages)
        except (ValueError, UnicodeError) as exc:
            # the checks at parse time should make this unreachable; never retried forever
            _log.exception("%s: message(s) could not be stored", self.adapter.channel)
            reason = f"could not be stored ({type(exc).__name__})"
            await dead_letter(
                self.inbox.redis, self.inbox.namespace, self.adapter.channel, reason, content
            )

    def _read(self, headers: Mapping[str, str], content: bytes) -> Parsed | str:
        """The adapter's reading of a verified body, or why the whole body is malformed."""
        try:
            return self.adapter.read(headers, content)
        except PayloadError as exc:
            return exc.reason
        except Exception as exc:  # a signed body must never become a 500
            _log.exception("%s: reading a verified body failed", self.adapter.channel)
            return f"unreadable ({type(exc).__name__})"

    def _ok(self) -> WebhookResponse:
        answer = self.adapter.acknowledgement()
        return WebhookResponse(answer.status, answer.body, answer.content_type)
