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
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message
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

from bot.channels import checks
from bot.channels.accounts import Section
from bot.channels.base import (
    Attachment,
    ChannelAdapter,
    Contact,
    InboundMessage,
    Location,
    OutboundMessage,
    Parsed,
    Rejected,
    SendResult,
    constant_time_equal,
    header,
    numbered_text,
)
from bot.channels.media import Media, MediaError, MediaTooLargeError, download
from bot.errors import ConfigError, PayloadError, SignatureError

__all__ = [
    "EDIT_WINDOW_SECONDS",
    "FILE_SCHEME",
    "TELEGRAM_API",
    "TelegramAdapter",
    "TelegramBotAccount",
]

TELEGRAM_API = "https://api.telegram.org"
FILE_SCHEME = "tg-file:"
"""How a Telegram attachment's ``file_id`` is written in :attr:`Attachment.url`."""
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}\Z")
_CALLBACK_DATA_BYTES = 64
EDIT_WINDOW_SECONDS = 10 * 60.0
"""An edit this soon after the original is answered as a new message; later ones are not."""


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
        clock: Unix seconds (dates a button tap; bounds message dates).

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
        clock: Callable[[], float] = time.time,
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
        self.clock = clock
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

    def read(self, headers: Mapping[str, str], raw_body: bytes) -> Parsed:
        """The resident's message, edit or button tap in one update; other kinds ignored.

        ``message`` of every kind becomes a message (text or caption; photo, document,
        audio, voice, video, video note, animation and sticker as attachments; location;
        venue as a location labelled with its title and address; contact). An
        ``edited_message`` is treated as a new message when the edit came within
        :data:`EDIT_WINDOW_SECONDS` of the original (a resident correcting a typo expects
        the correction to be answered); later edits are ignored. ``callback_query`` (a
        button tap) is dated when it arrives: the message it belongs to may be days old.
        ``business_message`` and the other business updates are ignored: a business
        account's chats are answered by its owner, not by the council's bot. So are
        channel posts, membership changes, inline queries, polls and reactions.

        Raises:
            PayloadError: Not JSON, not an update, or not from a known bot.
        """
        bot = self._bot_for(header(headers, "X-Telegram-Bot-Api-Secret-Token"))
        if bot is None:
            raise PayloadError(self.channel, "read() called on an unverified request")
        data = checks.load_json(self.channel, raw_body)
        if not isinstance(data, dict):
            raise PayloadError(self.channel, "update is not an object")
        update_id = data.get("update_id")
        if isinstance(update_id, bool) or not isinstance(update_id, int):
            raise PayloadError(self.channel, "update_id missing")
        parsed = Parsed()
        ref = f"update_id={update_id}"
        kind = next((name for name in data if name != "update_id"), "empty update")
        try:
            found = self._update(bot.name, str(update_id), kind, data.get(kind), ref)
        except PayloadError as exc:
            parsed.rejected.append(Rejected(ref, exc.reason))
            return parsed
        if isinstance(found, str):
            parsed.ignored.append(f"{ref}: {found}")
        else:
            parsed.messages.append(found)
        return parsed

    def _update(
        self, account: str, update_id: str, kind: str, value: Any, ref: str
    ) -> InboundMessage | str:
        channel = self.channel
        if kind == "callback_query":
            return self._button(account, update_id, checks.mapping(channel, value, kind), ref)
        if kind not in ("message", "edited_message"):
            return kind
        message = checks.mapping(channel, value, kind)
        sender = checks.mapping(channel, message.get("from") or {}, f"{kind}.from")
        if sender.get("is_bot") is True:
            return "a bot's message"
        chat = checks.mapping(channel, message.get("chat"), f"{kind}.chat")
        chat_id = checks.identifier(channel, chat.get("id"), f"{kind}.chat.id")
        date = checks.timestamp(channel, message.get("date"), f"{kind}.date", now=self.clock())
        if kind == "edited_message":
            edited = checks.timestamp(
                channel, message.get("edit_date"), f"{kind}.edit_date", now=self.clock()
            )
            if edited - date > EDIT_WINDOW_SECONDS:
                return "late edit"
            date = edited
        text = checks.optional_text(channel, message.get("text"), f"{kind}.text")
        caption = checks.optional_text(channel, message.get("caption"), f"{kind}.caption")
        attachments = _attachments(message, kind)
        location = _location(message, kind)
        contact = _contact(message, kind)
        if not (text or caption or attachments or location or contact):
            return "service message or content we do not read"
        return InboundMessage(
            channel=channel,
            account=account,
            sender=chat_id,
            message_id=update_id,
            text=text or caption,
            received_at=date,
            display_name=_full_name(sender, kind),
            attachments=attachments,
            location=location,
            contact=contact,
            raw_ref=f"{ref} ({kind})",
        )

    def _button(
        self, account: str, update_id: str, query: Mapping[str, Any], ref: str
    ) -> InboundMessage:
        channel = self.channel
        sender = checks.mapping(channel, query.get("from"), "callback_query.from")
        chat_id = checks.identifier(channel, sender.get("id"), "callback_query.from.id")
        message = query.get("message")
        if isinstance(message, dict) and isinstance(message.get("chat"), dict):
            chat_id = checks.identifier(
                channel, message["chat"].get("id"), "callback_query.message.chat.id"
            )
        data = checks.optional_text(channel, query.get("data"), "callback_query.data")
        return InboundMessage(
            channel=channel,
            account=account,
            sender=chat_id,
            message_id=update_id,
            text=data,
            received_at=self.clock(),  # a tap has no date; its message may be days old
            display_name=_full_name(sender, "callback_query"),
            quick_reply_payload=data or None,
            raw_ref=ref,
        )

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

    async def fetch_media(self, account: str, attachment: Attachment, *, max_bytes: int) -> Media:
        """A ``tg-file:<file_id>`` attachment: ``getFile`` for its path, then the file itself.

        Raises:
            MediaTooLargeError: Over ``max_bytes`` (by ``file_size`` before downloading).
            MediaError: Unknown bot, not a Telegram file id, or Telegram's refusal.
        """
        bot = self._bots.get(account)
        file_id = attachment.url.removeprefix(FILE_SCHEME)
        if bot is None:
            raise MediaError(self.channel, "unknown account")
        if not attachment.url.startswith(FILE_SCHEME) or not file_id:
            raise MediaError(self.channel, "not a Telegram file id")
        url = f"{self.api_base_url}/bot{bot.token}/getFile"
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(url, json={"file_id": file_id}) as response,
            ):
                answer = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise MediaError(self.channel, f"getFile: {type(exc).__name__}") from None
        result = answer.get("result") if isinstance(answer, dict) and answer.get("ok") else None
        path = result.get("file_path") if isinstance(result, dict) else None
        if not isinstance(path, str) or not path or ".." in path:
            raise MediaError(self.channel, "getFile gave no file path")
        size = result.get("file_size") if isinstance(result, dict) else None
        if isinstance(size, int) and size > max_bytes:
            raise MediaTooLargeError(self.channel, max_bytes)
        file_url = f"{self.api_base_url}/file/bot{bot.token}/{path}"
        return await download(self.channel, file_url, max_bytes=max_bytes)

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


_FILES = (
    # (field, kind, content type when Telegram gives none)
    ("document", "file", ""),
    ("audio", "audio", "audio/mpeg"),
    ("voice", "audio", "audio/ogg"),
    ("video", "video", "video/mp4"),
    ("video_note", "video", "video/mp4"),
    ("animation", "video", "video/mp4"),
    ("sticker", "sticker", "image/webp"),
)


def _file_id(item: Any, where: str) -> str:
    found = checks.mapping(TelegramAdapter.channel, item, where)
    return checks.identifier(TelegramAdapter.channel, found.get("file_id"), f"{where}.file_id")


def _attachments(message: Mapping[str, Any], kind: str) -> tuple[Attachment, ...]:
    # Telegram gives file ids, not URLs; getFile with the bot token resolves them when needed
    channel = TelegramAdapter.channel
    found: list[Attachment] = []
    sizes = checks.items(channel, message.get("photo"), f"{kind}.photo")
    if sizes:
        found.append(Attachment("image", f"{FILE_SCHEME}{_file_id(sizes[-1], kind)}", "image/jpeg"))
    for name, attachment_kind, default_type in _FILES:
        item = message.get(name)
        if item is None:
            continue
        where = f"{kind}.{name}"
        file_id = _file_id(item, where)
        mime = checks.optional_text(channel, item.get("mime_type"), f"{where}.mime_type")
        found.append(Attachment(attachment_kind, f"{FILE_SCHEME}{file_id}", mime or default_type))
    return tuple(found)


def _location(message: Mapping[str, Any], kind: str) -> Location | None:
    channel = TelegramAdapter.channel
    label = ""
    point = message.get("location")
    if message.get("venue") is not None:
        venue = checks.mapping(channel, message["venue"], f"{kind}.venue")
        point = venue.get("location")
        title = checks.optional_text(channel, venue.get("title"), f"{kind}.venue.title")
        address = checks.optional_text(channel, venue.get("address"), f"{kind}.venue.address")
        label = ", ".join(part for part in (title, address) if part)
    if point is None:
        return None
    pin = checks.mapping(channel, point, f"{kind}.location")
    return Location(
        checks.coordinate(channel, pin.get("latitude"), f"{kind}.location.latitude", 90),
        checks.coordinate(channel, pin.get("longitude"), f"{kind}.location.longitude", 180),
        label,
    )


def _contact(message: Mapping[str, Any], kind: str) -> Contact | None:
    channel = TelegramAdapter.channel
    if message.get("contact") is None:
        return None
    data = checks.mapping(channel, message["contact"], f"{kind}.contact")
    user_id = data.get("user_id")
    return Contact(
        phone=checks.text(channel, data.get("phone_number"), f"{kind}.contact.phone_number"),
        name=_full_name(data, f"{kind}.contact"),
        user_id=checks.identifier(channel, user_id, f"{kind}.contact.user_id")
        if user_id is not None
        else "",
    )


def _full_name(person: Mapping[str, Any], where: str) -> str:
    channel = TelegramAdapter.channel
    first = checks.optional_text(channel, person.get("first_name"), f"{where}.first_name")
    last = checks.optional_text(channel, person.get("last_name"), f"{where}.last_name")
    return f"{first} {last}".strip()
