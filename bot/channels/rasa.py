"""Rasa input channels for WhatsApp/SMS, Messenger, Instagram, Twitter and Telegram: workers only.

Each is a thin :class:`rasa.core.channels.channel.InputChannel` registered in
``credentials.yml`` under its dotted path. The webhooks are not served here: the public edge
(:mod:`bot.edge`) receives, verifies and queues them in the Redis inbox, and the Rasa server
listens only on a private address. What a section adds to the Rasa server is its adapter (to
send replies) and, through its blueprint's listeners, one
:class:`~bot.channels.inbox.InboxWorker`, which feeds queued messages to Rasa's
``on_new_message`` with a collecting output channel (releasing first what was held for the
resident's closed messaging window), and one :class:`~bot.channels.outbox.OutboxWorker`,
which sends the replies, with the :class:`~bot.channels.held.HeldMessages` walk beside it,
the safety net that queues again any held reply the resident's message did not release. All
start and stop with the server and use ``REDIS_URL`` and ``COUNCIL_NAMESPACE``. Importing
this module (Rasa does so at start-up) installs the log redaction of :mod:`bot.logs` in the
Rasa server.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, ClassVar

import redis.asyncio
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import logs, settings
from bot.channels.accounts import DEFAULT_CREDENTIALS
from bot.channels.base import Button, ChannelAdapter, InboundMessage, OutboundMessage
from bot.channels.held import HeldMessages
from bot.channels.inbox import Inbox, InboxWorker
from bot.channels.outbox import OutboxWorker
from bot.channels.registry import CHANNELS, ChannelSpec, build, secret_values
from bot.channels.stream import consumer_name
from bot.channels.supervisor import supervised
from bot.handoff.attachments import INTENT_PAYLOAD
from bot.keys import namespace as process_namespace
from bot.rasa_patches import close_action_sessions
from bot.redis_conn import connect_async, redis_url

__all__ = [
    "CANNOT_READ",
    "ChannelRuntime",
    "InstagramInput",
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


CANNOT_READ = INTENT_PAYLOAD
"""What Rasa reads for a message with only things the bot cannot use (a photo, a voice note, a
sticker, a shared contact...): the intent ``attachment``, answered by the rule that sends
``utter_cannot_read_attachment``; while a person has the conversation the case shows it as
"[photo]" etc. (:mod:`bot.handoff.attachments`)."""


def user_message(message: InboundMessage, output: CollectingOutputChannel) -> UserMessage:
    """The Rasa message for an inbound message (a tapped button sends its payload).

    A message with no words and no location, only attachments or a contact, becomes
    :data:`CANNOT_READ`; its attachments stay in the metadata for the handoff case.
    """
    payload = message.quick_reply_payload
    text = payload if payload and payload.startswith("/") else message.text
    if not text.strip() and message.location is None and (message.attachments or message.contact):
        text = CANNOT_READ
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
    if message.contact is not None:
        metadata["contact"] = asdict(message.contact)
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
            # the inbox worker releases a conversation's held messages when its resident
            # writes; this walk of the held set is the safety net (a hold racing that
            # message), run where the outbox is sent, with or without problem reports;
            # every worker runs it, each conversation's release is one Lua step
            held = HeldMessages(self.redis, self.namespace)
            # clients built now, not on the first send (which would stall the loop mid-traffic)
            await asyncio.gather(*(a.warm_up() for a in set(self.adapters.values())))
            _freeze_startup_objects()
            self._stop = asyncio.Event()
            self._tasks = [
                supervised("channels-inbox", lambda: worker.run(self._stop), self._stop),
                supervised("channels-outbox", lambda: sender.run(self._stop), self._stop),
                supervised("channels-held", lambda: held.run(self._stop), self._stop),
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


logs.install()


def _spec(name: str) -> ChannelSpec:
    return next(spec for spec in CHANNELS if spec.name == name)


class _WorkerInput(InputChannel):
    """Shared behaviour of our channels; subclasses name their row of the registry."""

    channel_name: ClassVar[str] = ""

    def __init__(self, adapter: ChannelAdapter) -> None:
        self.adapter = adapter

    @classmethod
    def name(cls) -> str:
        """The channel's name (its row in :data:`bot.channels.registry.CHANNELS`)."""
        return cls.channel_name

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """Build from this channel's ``credentials.yml`` section.

        Raises:
            ConfigError: A key is unknown or a value is wrong.
            MissingSecretError: A referenced environment variable is unset.
        """
        spec = _spec(cls.channel_name)
        logs.protect(secret_values(credentials, settings.current().environ))
        return cls(build(spec, credentials, DEFAULT_CREDENTIALS).adapter)

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        """The workers' start and stop, and a health route; the edge serves the webhooks.

        The health route (``GET /webhooks/<name>/``, on the internal address like all of the
        Rasa server) also keeps Sanic starting when nothing else has a route.
        """
        runtime.register(self.adapter, on_new_message)
        blueprint = Blueprint(f"{self.name()}_workers", __name__)

        @blueprint.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @blueprint.listener("after_server_start")
        async def start(app: Any, loop: Any) -> None:
            await runtime.start()

        @blueprint.listener("before_server_stop")
        async def stop(app: Any, loop: Any) -> None:
            await runtime.stop()
            await close_action_sessions()  # once the workers stopped calling actions

        return blueprint


class WhatsAppInput(_WorkerInput):
    """WhatsApp and SMS through Twilio (webhook on the edge: ``/webhooks/whatsapp/webhook``)."""

    channel_name = "whatsapp"


class MessengerInput(_WorkerInput):
    """Facebook Messenger (webhook on the edge: ``/webhooks/messenger/webhook``)."""

    channel_name = "messenger"


class TwitterInput(_WorkerInput):
    """Twitter/X direct messages (webhook on the edge: ``/webhooks/twitter/webhook``)."""

    channel_name = "twitter"


class TelegramInput(_WorkerInput):
    """Telegram (webhook on the edge: ``/webhooks/telegram/webhook``)."""

    channel_name = "telegram"


class InstagramInput(_WorkerInput):
    """Instagram direct messages (webhook on the edge: ``/webhooks/instagram/webhook``)."""

    channel_name = "instagram"
