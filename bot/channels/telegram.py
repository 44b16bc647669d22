"""Telegram through python-telegram-bot.

Inbound: each bot's webhook is set with its own ``secret_token``; Telegram sends it back in
``X-Telegram-Bot-Api-Secret-Token``, which also tells us which bot (account) was written to.
Updates are parsed with :meth:`telegram.Update.de_json`; replies go through
:meth:`telegram.Bot.send_message` (``api_base_url`` points the real client at a fake in tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.request import HTTPXRequest

from bot.channels.accounts import Section
from bot.channels.base import (
    Attachment,
    ChannelAdapter,
    InboundMessage,
    Location,
    OutboundMessage,
    SendResult,
    constant_time_equal,
    header,
    numbered_text,
)
from bot.errors import ConfigError, PayloadError, SignatureError

__all__ = ["TELEGRAM_API", "TelegramAdapter", "TelegramBotAccount"]

TELEGRAM_API = "https://api.telegram.org"
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}\Z")
_CALLBACK_DATA_BYTES = 64


@dataclass(frozen=True)
class TelegramBotAccount:
    """One of the council's Telegram bots.

    Attributes:
        name: The account id in conversation ids (the bot's username).
        token: The bot token.
        secret_token: The webhook's ``secret_token`` (unique per bot).
    """

    name: str
    token: str = field(repr=False)
    secret_token: str = field(repr=False)


class TelegramAdapter(ChannelAdapter):
    """Telegram for any number of the council's bots.

    Args:
        bots: The bots served (secret tokens must differ).
        api_base_url: Bot API base URL (tests: a local fake).
        timeout: Seconds before a send counts as timed out.

    Raises:
        ConfigError: Two bots share a secret token, or one is not valid for Telegram.
    """

    channel = "telegram"
    channels = ("telegram",)

    def __init__(
        self,
        bots: Sequence[TelegramBotAccount],
        *,
        api_base_url: str = TELEGRAM_API,
        timeout: float = 10.0,
    ) -> None:
        secrets = [bot.secret_token for bot in bots]
        if len(set(secrets)) != len(secrets):
            raise ConfigError("credentials", "telegram.accounts", "secret_token must differ")
        for bot in bots:
            if not _SECRET.match(bot.secret_token):
                raise ConfigError(
                    "credentials", f"telegram.{bot.name}", "secret_token: 1-256 of A-Za-z0-9_-"
                )
        self._bots = {bot.name: bot for bot in bots}
        self.api_base_url = api_base_url.rstrip("/")
        self.timeout = timeout
        self._clients: dict[str, tuple[Bot, HTTPXRequest]] = {}

    @classmethod
    def from_config(cls, section: Section, **overrides: Any) -> TelegramAdapter:
        """Build from a ``credentials.yml`` section.

        Raises:
            ConfigError: A key is unknown or a value is wrong.
            MissingSecretError: A referenced environment variable is unset.
        """
        bots = []
        for item in section.accounts():
            item.only({"name", "token", "secret_token"})
            bots.append(
                TelegramBotAccount(
                    item.text("name"), item.secret("token"), item.secret("secret_token")
                )
            )
        options: dict[str, Any] = {"api_base_url": section.text("api_base_url", TELEGRAM_API)}
        options.update(overrides)
        return cls(bots, **options)

    def accounts(self) -> Sequence[str]:
        """The bot names served."""
        return list(self._bots)

    def _bot_for(self, given: str) -> TelegramBotAccount | None:
        found = None
        for bot in self._bots.values():
            # compare against every bot so timing does not tell which secret was close
            if constant_time_equal(bot.secret_token, given):
                found = bot
        return found

    def verify(self, headers: Mapping[str, str], raw_body: bytes, url: str) -> None:
        """Check ``X-Telegram-Bot-Api-Secret-Token`` against every bot's secret.

        Raises:
            SignatureError: Missing or unknown secret token.
        """
        given = header(headers, "X-Telegram-Bot-Api-Secret-Token")
        if not given:
            raise SignatureError(self.channel, "no X-Telegram-Bot-Api-Secret-Token header")
        if self._bot_for(given) is None:
            raise SignatureError(self.channel, "X-Telegram-Bot-Api-Secret-Token does not match")

    def parse(self, headers: Mapping[str, str], raw_body: bytes) -> list[InboundMessage]:
        """The resident's message or button tap in one update (others are ignored).

        Raises:
            PayloadError: Not JSON or not an update.
        """
        bot = self._bot_for(header(headers, "X-Telegram-Bot-Api-Secret-Token"))
        if bot is None:
            raise PayloadError(self.channel, "parse() called on an unverified request")
        try:
            data = json.loads(raw_body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise PayloadError(self.channel, "body is not JSON") from exc
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            raise PayloadError(self.channel, "update_id missing")
        try:
            update = Update.de_json(data, None)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PayloadError(self.channel, f"malformed update ({type(exc).__name__})") from exc
        ref = f"update_id={update.update_id}"
        query = update.callback_query
        if query is not None:
            chat = query.message.chat.id if query.message is not None else query.from_user.id
            return [
                InboundMessage(
                    channel=self.channel,
                    account=bot.name,
                    sender=str(chat),
                    message_id=str(update.update_id),
                    text=query.data or "",
                    received_at=(query.message.date.timestamp() if query.message else 0.0),
                    display_name=query.from_user.full_name,
                    quick_reply_payload=query.data,
                    raw_ref=ref,
                )
            ]
        message = update.message
        if message is None or (message.from_user is not None and message.from_user.is_bot):
            return []  # edits, channel posts, other bots
        return [
            InboundMessage(
                channel=self.channel,
                account=bot.name,
                sender=str(message.chat.id),
                message_id=str(update.update_id),
                text=message.text or message.caption or "",
                received_at=message.date.timestamp(),
                display_name=message.from_user.full_name if message.from_user else "",
                attachments=_attachments(message),
                location=Location(message.location.latitude, message.location.longitude)
                if message.location
                else None,
                raw_ref=ref,
            )
        ]

    async def warm_up(self) -> None:
        """Build every bot's client and load httpx's network backend before traffic arrives.

        Measured in ``bench/channels.py``: done on the first send instead, this held the event
        loop for 65-80 ms (TLS context, anyio's lazy imports).
        """
        for bot in self._bots.values():
            self._client(bot)
        # what httpcore imports on its first connection (a private module: best effort)
        with contextlib.suppress(ImportError):
            importlib.import_module("httpcore._backends.anyio")

    def _client(self, bot: TelegramBotAccount) -> Bot:
        found = self._clients.get(bot.name)
        if found is None:
            request = HTTPXRequest(
                connection_pool_size=8,
                read_timeout=self.timeout,
                write_timeout=self.timeout,
                connect_timeout=self.timeout,
            )
            # one request object for both slots so aclose() closes every connection pool
            client = Bot(
                bot.token,
                base_url=f"{self.api_base_url}/bot",
                request=request,
                get_updates_request=request,
            )
            found = self._clients[bot.name] = (client, request)
        return found[0]

    async def send(
        self, account: str, recipient: str, message: OutboundMessage, *, channel: str = ""
    ) -> SendResult:
        """Send from bot ``account`` to chat ``recipient`` (inline buttons when they fit)."""
        bot = self._bots.get(account)
        if bot is None:
            return SendResult("failed", error=f"unknown bot {account}")
        text, markup = message.text, None
        fits = all(
            len((button.payload or button.title).encode()) <= _CALLBACK_DATA_BYTES
            for button in message.buttons
        )
        if message.buttons and fits:
            markup = InlineKeyboardMarkup(
                [
                    [
                        InlineKeyboardButton(
                            button.title, callback_data=button.payload or button.title
                        )
                    ]
                    for button in message.buttons
                ]
            )
        elif message.buttons:
            text = numbered_text(message)
        try:
            sent = await self._client(bot).send_message(
                chat_id=recipient, text=text, reply_markup=markup
            )
        except RetryAfter as exc:
            # __reduce__ gives the seconds without PTB's timedelta deprecation warning
            seconds = float(exc.__reduce__()[1][0])
            return SendResult("retry", error="rate limited", code="429", retry_after=seconds)
        except (Forbidden, ChatMigrated, InvalidToken) as exc:
            return SendResult("failed", error=f"{type(exc).__name__}: {exc.message}")
        except BadRequest as exc:
            return SendResult("failed", error=f"BadRequest: {exc.message}", code="400")
        except NetworkError as exc:  # includes TimedOut and 5xx answers
            return SendResult("retry", error=f"{type(exc).__name__}: {exc.message}")
        except TelegramError as exc:
            return SendResult("failed", error=f"{type(exc).__name__}: {exc.message}")
        return SendResult("sent", provider_id=str(_message_id(sent)))

    async def aclose(self) -> None:
        """Close every bot's connection pool."""
        clients, self._clients = self._clients, {}
        await asyncio.gather(*(request.shutdown() for _, request in clients.values()))


def _message_id(sent: Message) -> int:
    return sent.message_id


def _attachments(message: Message) -> tuple[Attachment, ...]:
    # Telegram gives file ids, not URLs; getFile with the bot token resolves them when needed
    found: list[Attachment] = []
    if message.photo:
        found.append(Attachment("image", f"tg-file:{message.photo[-1].file_id}", "image/jpeg"))
    if message.document:
        document = message.document
        found.append(Attachment("file", f"tg-file:{document.file_id}", document.mime_type or ""))
    if message.voice:
        found.append(Attachment("audio", f"tg-file:{message.voice.file_id}", "audio/ogg"))
    if message.video:
        found.append(Attachment("video", f"tg-file:{message.video.file_id}", "video/mp4"))
    return tuple(found)
