"""The web chat's channel adapter: a reply is an event in the conversation's stream.

Registered in :data:`bot.channels.registry.CHANNELS` (row ``webchat``, ``credentials.yml``
section ``bot.webchat.rasa.WebChatInput``), so the outbox worker sends the bot's and agents'
replies through :meth:`WebChatAdapter.send` like any channel's. A send appends a ``message``
event (:mod:`bot.webchat.events`; buttons as buttons; a button whose payload is
:data:`UPLOAD_PAYLOAD` becomes the ``upload`` field, the widget's "add a photo" control; one
whose payload is :data:`~bot.webchat.pins.LOCATION_PAYLOAD` sets ``ask_location``, the widget's
"Share my location" button), says
first when the conversation's state changed (:func:`bot.webchat.status.refresh`: an agent's
reply comes ``from: agent`` with the agent's name), and also queues the message to the
resident's confirmed phone number when they chose to continue there (:mod:`bot.webchat.phone`),
without the widget's own controls.
The web chat receives no webhook: the edge's ``/webchat`` routes (:mod:`bot.webchat.app`)
queue residents' messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import redis.asyncio

from bot import profile
from bot.channels.accounts import Section
from bot.channels.base import (
    Attachment,
    ChannelAdapter,
    OutboundMessage,
    Parsed,
    SendResult,
    conversation_id,
)
from bot.channels.media import Media, MediaError, MediaTooLargeError
from bot.errors import PayloadError, SignatureError
from bot.keys import namespace as process_namespace
from bot.redis_conn import connect_async, redis_url
from bot.webchat.config import WebChatConfig
from bot.webchat.events import EventLog, now_iso
from bot.webchat.phone import mirror
from bot.webchat.pins import LOCATION_PAYLOAD
from bot.webchat.status import CHANNEL, refresh
from bot.webchat.uploads import UploadStore, parse_attachment_url

__all__ = ["UPLOAD_PAYLOAD", "WebChatAdapter"]

UPLOAD_PAYLOAD = "/webchat_upload"
"""A button with this payload asks for a photo: the web chat shows an upload control instead
(other channels' residents simply send the photo)."""
_WIDGET_ONLY = (UPLOAD_PAYLOAD, LOCATION_PAYLOAD)


class WebChatAdapter(ChannelAdapter):
    """Sends to web chat conversations (all of the council's: one account, the council id).

    Args:
        client: Asyncio Redis client (decoded strings); None connects to ``REDIS_URL`` on
            first use.
        namespace: Key namespace (None: this process', ``COUNCIL_NAMESPACE``).
        config: The profile's ``webchat`` section (None: this process' profile's).
        keep_days: Days conversations are kept (None: the profile's retention).
    """

    channel = CHANNEL
    channels = (CHANNEL,)

    def __init__(
        self,
        client: redis.asyncio.Redis | None = None,
        namespace: str | None = None,
        *,
        config: WebChatConfig | None = None,
        keep_days: int | None = None,
    ) -> None:
        self._client = client
        self._own_client = client is None
        self._namespace = namespace
        self._config = config
        self._keep_days = keep_days

    @classmethod
    def from_config(cls, section: Section, /) -> WebChatAdapter:
        """Build from the ``bot.webchat.rasa.WebChatInput`` section (no keys of its own)."""
        section.only(())
        return cls()

    @property
    def namespace(self) -> str:
        """The key namespace."""
        return self._namespace or process_namespace()

    def config(self) -> WebChatConfig | None:
        """The profile's ``webchat`` section."""
        return self._config if self._config is not None else profile.current().webchat

    def keep_days(self) -> int:
        """Days conversations are kept."""
        if self._keep_days is not None:
            return self._keep_days
        return profile.current().retention_in_force().conversation_days

    async def redis(self) -> redis.asyncio.Redis:
        """The Redis client, connected on first use."""
        if self._client is None:
            self._client = await connect_async(redis_url())
        return self._client

    def verify(self, headers: Mapping[str, str], raw_body: bytes, url: str) -> None:
        """Refuse: residents' web chat messages arrive through ``/webchat``, not a webhook."""
        raise SignatureError(self.channel, "the web chat has no webhook")

    def read(self, headers: Mapping[str, str], raw_body: bytes) -> Parsed:
        """Refuse (see :meth:`verify`)."""
        raise PayloadError(self.channel, "the web chat has no webhook")

    def accounts(self) -> list[str]:
        """The council id, when the profile has a web chat."""
        config = self.config()
        return [config.council_id] if config else []

    def _data(self, message: OutboundMessage, state: str, agent: str) -> dict[str, Any]:
        config = self.config()
        upload = None
        ask_location = False
        buttons = []
        for button in message.buttons:
            if button.payload == LOCATION_PAYLOAD:
                ask_location = True
            elif button.payload == UPLOAD_PAYLOAD:
                if config is not None:
                    upload = {
                        "accept": list(config.limits.upload_types),
                        "max_bytes": config.limits.max_upload_bytes,
                    }
            else:
                buttons.append({"title": button.title, "payload": button.payload or button.title})
        data: dict[str, Any] = {
            "from": "agent" if state == "agent" else "bot",
            "text": message.text,
            "buttons": buttons,
            "upload": upload,
            "ask_location": ask_location,
            "at": now_iso(),
        }
        if state == "agent" and agent:  # no display name: the widget says "an adviser"
            data["agent_name"] = agent
        return data

    async def send(
        self, account: str, recipient: str, message: OutboundMessage, *, channel: str = ""
    ) -> SendResult:
        """Append the message to the conversation ``recipient``'s events (and its phone's)."""
        # the widget's own controls (add a photo, share my location) mean nothing on a phone
        for_phone = replace(
            message, buttons=tuple(b for b in message.buttons if b.payload not in _WIDGET_ONLY)
        )
        try:
            client = await self.redis()
            namespace, keep = self.namespace, self.keep_days()
            state, agent = await refresh(
                client, namespace, conversation_id(CHANNEL, account, recipient), keep_days=keep
            )
            log = EventLog(client, namespace, keep_days=keep)
            entry, _new = await log.append(recipient, "message", self._data(message, state, agent))
            config = self.config()
            if config is not None:
                await mirror(client, namespace, await log.state(recipient), config, for_phone)
        except (redis.RedisError, OSError) as exc:
            return SendResult("retry", error=f"Redis: {type(exc).__name__}")
        return SendResult("sent", provider_id=entry)

    async def fetch_media(self, account: str, attachment: Attachment, *, max_bytes: int) -> Media:
        """An upload of a web chat conversation (``webchat-upload:<conversation>/<id>``).

        Raises:
            MediaTooLargeError: Over ``max_bytes``.
            MediaError: Not an upload's URL, or it has expired.
        """
        named = parse_attachment_url(attachment.url)
        if named is None:
            raise MediaError(self.channel, "not a web chat upload")
        store = UploadStore(await self.redis(), self.namespace)
        found = await store.get(*named)
        if found is None:
            raise MediaError(self.channel, "the upload has expired")
        kind, data = found
        if len(data) > max_bytes:
            raise MediaTooLargeError(self.channel, max_bytes)
        return Media(data, kind)

    async def aclose(self) -> None:
        """Close the client this adapter connected."""
        if self._own_client and self._client is not None:
            await self._client.close()
            self._client = None
