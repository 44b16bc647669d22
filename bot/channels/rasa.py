"""Rasa input channels for WhatsApp/SMS, Messenger, Twitter and Telegram.

Each is a thin :class:`rasa.core.channels.channel.InputChannel` registered in
``credentials.yml`` under its dotted path; its Sanic blueprint serves
``/webhooks/<name>/webhook`` and passes requests to :class:`bot.channels.webhook.Webhook`
(size limit → signature → parse → Redis inbox → 200). The same process runs one
:class:`~bot.channels.inbox.InboxWorker`, which feeds messages to Rasa's ``on_new_message``
with a collecting output channel, and one :class:`~bot.channels.outbox.OutboxWorker`, which
sends the replies. Both start with the server and use ``REDIS_URL`` and ``COUNCIL_NAMESPACE``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

import redis.asyncio
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.accounts import DEFAULT_CREDENTIALS, Section
from bot.channels.base import Button, ChannelAdapter, InboundMessage, OutboundMessage
from bot.channels.inbox import Inbox, InboxWorker
from bot.channels.messenger import MessengerAdapter
from bot.channels.outbox import OutboxWorker
from bot.channels.stream import consumer_name
from bot.channels.supervisor import supervised
from bot.channels.telegram import TelegramAdapter
from bot.channels.twilio import TwilioAdapter
from bot.channels.twitter import TwitterAdapter
from bot.channels.webhook import DEFAULT_MAX_BODY, Webhook, WebhookResponse
from bot.keys import namespace as process_namespace
from bot.redis_conn import connect_async, redis_url

__all__ = [
    "ChannelRuntime",
    "MessengerInput",
    "TelegramInput",
    "TwitterInput",
    "WhatsAppInput",
    "collected_to_outbound",
    "runtime",
    "user_message",
]

_log = logging.getLogger(__name__)

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


def user_message(message: InboundMessage, output: CollectingOutputChannel) -> UserMessage:
    """The Rasa message for an inbound message (a tapped button sends its payload)."""
    payload = message.quick_reply_payload
    text = payload if payload and payload.startswith("/") else message.text
    metadata: dict[str, Any] = {
        "account": message.account,
        "display_name": message.display_name,
        "channel_message_id": message.message_id,
        "received_at": message.received_at,
    }
    if message.attachments:
        metadata["attachments"] = [
            {"kind": a.kind, "url": a.url, "content_type": a.content_type}
            for a in message.attachments
        ]
    if message.location is not None:
        metadata["location"] = {
            "latitude": message.location.latitude,
            "longitude": message.location.longitude,
            "label": message.location.label,
        }
    return UserMessage(
        text=text,
        output_channel=output,
        sender_id=message.conversation_id,
        input_channel=message.channel,
        message_id=message.message_id,
        metadata=metadata,
    )


def collected_to_outbound(collected: Sequence[Mapping[str, Any]]) -> list[OutboundMessage]:
    """Turn the bot's collected utterances into outbound messages (empty ones dropped)."""
    replies = []
    for item in collected:
        text = str(item.get("text") or "")
        if item.get("image"):
            text = f"{text}\n{item['image']}".strip()
        buttons = tuple(
            Button(str(b.get("title", "")), str(b.get("payload", "")))
            for b in (item.get("buttons") or item.get("quick_replies") or ())
            if isinstance(b, Mapping)
        )
        if text or buttons:
            replies.append(OutboundMessage(text, buttons))
    return replies


class ChannelRuntime:
    """The Redis connection, inbox and workers shared by every channel of one server."""

    def __init__(self) -> None:
        self.adapters: dict[str, ChannelAdapter] = {}
        self.on_new_message: OnNewMessage | None = None
        self.redis: redis.asyncio.Redis | None = None
        self.namespace = ""
        self._inbox: Inbox | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()

    def register(self, adapter: ChannelAdapter, on_new_message: OnNewMessage) -> None:
        """Add a channel's adapter (its sends go through the shared outbox)."""
        for name in adapter.channels or (adapter.channel,):
            self.adapters[name] = adapter
        self.on_new_message = on_new_message

    async def inbox(self) -> Inbox:
        """The inbox, connecting to Redis on first use."""
        await self.start()
        assert self._inbox is not None  # set by start()
        return self._inbox

    async def handle(self, message: InboundMessage) -> list[OutboundMessage]:
        """Run one message through Rasa and return its replies."""
        if self.on_new_message is None:
            raise RuntimeError("no channel registered")
        output = CollectingOutputChannel()
        await self.on_new_message(user_message(message, output))
        return collected_to_outbound(output.messages)

    async def start(self) -> None:
        """Connect to Redis and start the workers (once)."""
        async with self._lock:
            if self._inbox is not None:
                return
            self.namespace = process_namespace()
            self.redis = await connect_async(redis_url())
            consumer = consumer_name()  # one per process; a dead one's work is taken over
            inbox = Inbox(self.redis, self.namespace)
            await inbox.ensure_group()
            worker = InboxWorker(self.redis, self.handle, self.namespace, consumer=consumer)
            sender = OutboxWorker(self.redis, self.adapters, self.namespace, consumer=consumer)
            # clients built now, not on the first send (which would stall the loop mid-traffic)
            await asyncio.gather(*(a.warm_up() for a in set(self.adapters.values())))
            _freeze_startup_objects()
            self._stop = asyncio.Event()
            self._tasks = [
                supervised("channels-inbox", lambda: worker.run(self._stop), self._stop),
                supervised("channels-outbox", lambda: sender.run(self._stop), self._stop),
            ]
            self._inbox = inbox
            _log.info("channels %s: workers started (%s)", sorted(self.adapters), consumer)

    async def stop(self) -> None:
        """Stop the workers, close the adapters and Redis."""
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await asyncio.gather(*(a.aclose() for a in set(self.adapters.values())))
        if self.redis is not None:
            await self.redis.close()
        self.redis = None
        self._inbox = None


_frozen = False


def _freeze_startup_objects() -> None:
    """Keep what start-up loaded (Rasa, the agent, the SDKs) out of every later full collection.

    Measured in ``bench/channels.py``: each full collection walked them all and stalled the
    event loop, so every webhook in flight, for 70-100 ms. Runs once per process, after the
    agent is loaded (Rasa loads it before the server starts; this runs after).
    """
    global _frozen
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen = True


runtime = ChannelRuntime()
"""This process' channel runtime (Rasa runs one server per process)."""


def _sanic_response(answer: WebhookResponse) -> HTTPResponse:
    return response.text(answer.body, status=answer.status, content_type=answer.content_type)


class _WebhookInput(InputChannel):
    """Shared blueprint of our channels; subclasses name the channel and its adapter."""

    channel_name: ClassVar[str] = ""
    adapter_class: ClassVar[Any] = None
    section_keys: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, adapter: ChannelAdapter, max_body_bytes: int = DEFAULT_MAX_BODY) -> None:
        self.adapter = adapter
        self.max_body_bytes = max_body_bytes

    @classmethod
    def name(cls) -> str:
        """The channel's name (``/webhooks/<name>/webhook``)."""
        return cls.channel_name

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """Build from this channel's ``credentials.yml`` section.

        Raises:
            ConfigError: A key is unknown or a value is wrong.
            MissingSecretError: A referenced environment variable is unset.
        """
        section = Section(credentials, DEFAULT_CREDENTIALS, f"{cls.__module__}.{cls.__name__}")
        section.only(cls.section_keys | {"accounts", "api_base_url", "max_body_bytes"})
        options = {key: value for key, value in section.data.items() if key != "max_body_bytes"}
        adapter = cls.adapter_class.from_config(
            Section(options, section.path, section.key, section.env)
        )
        return cls(adapter, int(section.number("max_body_bytes", DEFAULT_MAX_BODY)))

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        """The webhook routes, and the workers' start and stop with the server."""
        runtime.register(self.adapter, on_new_message)
        hook: Webhook | None = None
        blueprint = Blueprint(f"{self.name()}_webhook", __name__)

        async def webhook_for() -> Webhook:
            nonlocal hook
            if hook is None:
                hook = Webhook(
                    self.adapter, await runtime.inbox(), max_body_bytes=self.max_body_bytes
                )
            return hook

        @blueprint.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @blueprint.route("/webhook", methods=["GET", "POST"])
        async def receive(request: Request) -> HTTPResponse:
            current = await webhook_for()
            if request.method == "GET":
                query = {key: values[0] for key, values in request.args.items() if values}
                return _sanic_response(current.challenge(query))
            headers = dict(request.headers)
            if current.too_large(headers):
                return _sanic_response(WebhookResponse(413, "payload too large"))
            return _sanic_response(await current.receive(request.url, headers, request.body))

        @blueprint.listener("after_server_start")
        async def start(app: Any, loop: Any) -> None:
            await runtime.start()

        @blueprint.listener("before_server_stop")
        async def stop(app: Any, loop: Any) -> None:
            await runtime.stop()

        return blueprint


class WhatsAppInput(_WebhookInput):
    """WhatsApp and SMS through Twilio (``/webhooks/whatsapp/webhook``)."""

    channel_name = "whatsapp"
    adapter_class = TwilioAdapter
    section_keys = frozenset({"trust_proxy"})


class MessengerInput(_WebhookInput):
    """Facebook Messenger (``/webhooks/messenger/webhook``)."""

    channel_name = "messenger"
    adapter_class = MessengerAdapter
    section_keys = frozenset({"app_secret", "verify_token", "api_version"})


class TwitterInput(_WebhookInput):
    """Twitter/X direct messages (``/webhooks/twitter/webhook``)."""

    channel_name = "twitter"
    adapter_class = TwitterAdapter
    section_keys = frozenset({"consumer_secret"})


class TelegramInput(_WebhookInput):
    """Telegram (``/webhooks/telegram/webhook``)."""

    channel_name = "telegram"
    adapter_class = TelegramAdapter
