"""The webhook steps every channel shares, without a web framework.

size limit → signature check (before the body is parsed) → parse → durable queue → 200.
The Rasa input channels (:mod:`bot.channels.rasa`) pass Sanic's request through this; tests
and benchmarks call it directly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import redis

from bot.channels.base import ChannelAdapter, header
from bot.channels.inbox import Inbox
from bot.channels.messenger import MessengerAdapter
from bot.channels.twilio import TwilioAdapter
from bot.channels.twitter import TwitterAdapter
from bot.errors import PayloadError, SignatureError

__all__ = ["DEFAULT_MAX_BODY", "Webhook", "WebhookResponse"]

_log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 256 * 1024
"""Largest body accepted (providers' messages are a few KB; media arrive as URLs)."""
_TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


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
        inbox: Where verified messages are queued.
        max_body_bytes: Larger bodies are refused with 413 before anything else.
    """

    def __init__(
        self, adapter: ChannelAdapter, inbox: Inbox, *, max_body_bytes: int = DEFAULT_MAX_BODY
    ) -> None:
        self.adapter = adapter
        self.inbox = inbox
        self.max_body_bytes = max_body_bytes

    def too_large(self, headers: Mapping[str, str]) -> bool:
        """The declared ``Content-Length`` is over the limit (check before reading the body)."""
        declared = header(headers, "Content-Length")
        return declared.isdigit() and int(declared) > self.max_body_bytes

    def challenge(self, query: Mapping[str, str]) -> WebhookResponse:
        """Answer a GET: Messenger's subscription check or X's CRC check."""
        if isinstance(self.adapter, MessengerAdapter):
            answer = self.adapter.subscription_challenge(query)
            return WebhookResponse(200, answer) if answer else WebhookResponse(403, "forbidden")
        if isinstance(self.adapter, TwitterAdapter):
            token = query.get("crc_token", "")
            if not token:
                return WebhookResponse(400, "crc_token missing")
            return WebhookResponse(200, json.dumps(self.adapter.crc(token)), "application/json")
        return WebhookResponse(405, "method not allowed")

    async def receive(
        self, url: str, headers: Mapping[str, str], raw_body: bytes
    ) -> WebhookResponse:
        """Handle a POST: verify, parse, queue; 200 only once the messages are in Redis."""
        channel = self.adapter.channel
        if self.too_large(headers) or len(raw_body) > self.max_body_bytes:
            _log.warning("%s: body over %d bytes refused", channel, self.max_body_bytes)
            return WebhookResponse(413, "payload too large")
        try:
            self.adapter.verify(headers, raw_body, url)
        except SignatureError as exc:
            # never log the body of a request we could not verify
            _log.warning("%s: refused: %s", channel, exc.reason)
            return WebhookResponse(403, "forbidden")
        try:
            messages = self.adapter.parse(headers, raw_body)
        except PayloadError as exc:
            _log.warning("%s: bad payload: %s", channel, exc.reason)
            return WebhookResponse(400, "bad request")
        try:
            await self.inbox.accept(messages)
        except redis.RedisError:
            # no 200: the provider retries, and de-duplication makes the retry safe
            _log.exception("%s: cannot queue %d message(s)", channel, len(messages))
            return WebhookResponse(503, "unavailable")
        if isinstance(self.adapter, TwilioAdapter):
            return WebhookResponse(200, _TWIML_EMPTY, "text/xml")
        return WebhookResponse(200, "ok")
