"""The common message types and the adapter contract every channel implements.

An adapter is framework-free: it sees header mappings and raw request bytes, never a Sanic or
aiohttp request, so the same code runs in the Rasa server, in tests and in benchmarks.
"""

from __future__ import annotations

import abc
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from bot.channels.media import Media, MediaError

__all__ = [
    "DELIVERY_STATUSES",
    "Attachment",
    "Button",
    "Challenge",
    "ChannelAdapter",
    "Contact",
    "DeliveryStatus",
    "InboundMessage",
    "Location",
    "OutboundMessage",
    "Parsed",
    "Receipt",
    "Rejected",
    "SendResult",
    "Template",
    "constant_time_equal",
    "conversation_id",
    "header",
    "numbered_text",
    "retry_after_seconds",
]


def conversation_id(channel: str, account: str, sender: str) -> str:
    """Return the Rasa ``sender_id`` of one resident on one of the council's accounts.

    Args:
        channel: Channel name (``whatsapp``, ``sms``, ``messenger``, ``twitter``, ``telegram``).
        account: The council's account the resident wrote to (number, page, user id, bot).
        sender: The resident's id on the channel.

    Raises:
        ValueError: A part is empty, or the channel or account contains ``:`` (the id could
            not be split back into its parts).
    """
    if not channel or not account or not sender:
        raise ValueError("channel, account and sender must all be non-empty")
    if ":" in channel or ":" in account:
        raise ValueError(f"channel and account may not contain ':' ({channel!r}, {account!r})")
    return f"{channel}:{account}:{sender}"


def constant_time_equal(expected: str | bytes, given: str | bytes) -> bool:
    """Compare two secrets in constant time (``hmac.compare_digest``), str or bytes alike."""
    left = expected.encode() if isinstance(expected, str) else expected
    right = given.encode() if isinstance(given, str) else given
    return hmac.compare_digest(left, right)


def header(headers: Mapping[str, str], name: str) -> str:
    """Return a header's value by case-insensitive name ('' when absent)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return ""


@dataclass(frozen=True)
class Attachment:
    """A file the resident sent.

    Attributes:
        kind: ``image``, ``audio``, ``video``, ``file`` or the provider's own word.
        url: Where the provider serves it (may need the account's credentials).
        content_type: MIME type when the provider says.
    """

    kind: str
    url: str
    content_type: str = ""


@dataclass(frozen=True)
class Location:
    """A location pin.

    Attributes:
        latitude: Degrees north.
        longitude: Degrees east.
        label: Address or place name when the provider gives one.
    """

    latitude: float
    longitude: float
    label: str = ""


@dataclass(frozen=True)
class Contact:
    """A contact card the resident shared.

    Attributes:
        phone: The phone number as given.
        name: The contact's name.
        user_id: The contact's id on the channel, when it has one.
    """

    phone: str
    name: str = ""
    user_id: str = ""


@dataclass(frozen=True)
class InboundMessage:
    """One resident's message, the same shape whatever channel it came from.

    Attributes:
        channel: Channel name.
        account: The council's account it was sent to.
        sender: The resident's id on the channel.
        message_id: The provider's id of the message (the de-duplication key).
        text: The message text ('' for a bare attachment or pin).
        received_at: When the provider says it was sent (Unix seconds).
        display_name: The resident's name as the channel shows it.
        attachments: Files sent with the message.
        location: A location pin, if one was sent.
        quick_reply_payload: The payload of the quick reply or button tapped.
        contact: A contact card, if one was shared.
        raw_ref: Where the message came from in the provider's payload (for support).
    """

    channel: str
    account: str
    sender: str
    message_id: str
    text: str
    received_at: float
    display_name: str = ""
    attachments: tuple[Attachment, ...] = ()
    location: Location | None = None
    quick_reply_payload: str | None = None
    raw_ref: str = ""
    contact: Contact | None = None

    @property
    def conversation_id(self) -> str:
        """The Rasa conversation of this resident on this account."""
        return conversation_id(self.channel, self.account, self.sender)

    def to_json(self) -> str:
        """Serialise for the inbox stream."""
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> InboundMessage:
        """Rebuild a message written by :meth:`to_json`."""
        data: dict[str, Any] = json.loads(text)
        location = data.pop("location", None)
        attachments = data.pop("attachments", ())
        contact = data.pop("contact", None)
        return cls(
            **data,
            attachments=tuple(Attachment(**item) for item in attachments),
            location=Location(**location) if location else None,
            contact=Contact(**contact) if contact else None,
        )


@dataclass(frozen=True)
class Button:
    """A button or quick reply.

    Attributes:
        title: What the resident sees.
        payload: What comes back when it is tapped (defaults to the title).
    """

    title: str
    payload: str = ""


@dataclass(frozen=True)
class Template:
    """An approved WhatsApp template (sent when the 24-hour window has closed).

    Attributes:
        name: Our name for it (``council_reply_waiting``); accounts map it to a ``ContentSid``.
        variables: Values for the template's placeholders, by position or name.
    """

    name: str
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundMessage:
    """A reply to send.

    Attributes:
        text: The text.
        buttons: Buttons or quick replies; numbered text where the channel has none.
        template: WhatsApp template to send instead of free text.
        tag: Messenger message tag (``HUMAN_AGENT`` for agents' replies after 24 hours).
    """

    text: str
    buttons: tuple[Button, ...] = ()
    template: Template | None = None
    tag: str | None = None

    def to_json(self) -> str:
        """Serialise for the outbox stream."""
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> OutboundMessage:
        """Rebuild a message written by :meth:`to_json`."""
        data: dict[str, Any] = json.loads(text)
        template = data.get("template")
        return cls(
            text=str(data.get("text", "")),
            buttons=tuple(Button(**item) for item in data.get("buttons", ())),
            template=Template(template["name"], dict(template.get("variables") or {}))
            if template
            else None,
            tag=data.get("tag"),
        )


DeliveryStatus = Literal["queued", "sent", "delivered", "read", "failed"]
"""The state of one of our outbound messages, in the order it normally moves."""
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = ("queued", "sent", "delivered", "read", "failed")


@dataclass(frozen=True)
class Receipt:
    """A provider's report on messages we sent (Twilio status callback, Messenger read...).

    Attributes:
        channel: Channel name.
        account: The council's account that sent the messages.
        recipient: The resident they were sent to.
        status: What happened to them.
        at: When the provider says it happened (Unix seconds).
        provider_ids: The provider's ids of the messages concerned.
        watermark: Every message sent up to this time (Unix seconds) is concerned too
            (Messenger's ``read`` and ``delivery`` events say so instead of naming ids).
        error: Why it failed, for ``failed``.
        code: The provider's error code, for ``failed``.
    """

    channel: str
    account: str
    recipient: str
    status: DeliveryStatus
    at: float
    provider_ids: tuple[str, ...] = ()
    watermark: float | None = None
    error: str = ""
    code: str = ""

    @property
    def conversation_id(self) -> str:
        """The conversation the messages belong to."""
        return conversation_id(self.channel, self.account, self.recipient)


@dataclass(frozen=True)
class Rejected:
    """One event of a verified payload that could not be understood (the rest still count).

    Attributes:
        ref: Where it is in the payload (``entry[1].messaging[0]``).
        reason: What is wrong with it.
    """

    ref: str
    reason: str


@dataclass(frozen=True)
class Parsed:
    """Everything one verified webhook request carried.

    Attributes:
        messages: Residents' messages, for the inbox.
        receipts: Delivery reports on our own messages.
        ignored: Events deliberately not acted on (``ref: kind``), for the log.
        rejected: Malformed events, dead-lettered with their reason.
    """

    messages: list[InboundMessage] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


@dataclass(frozen=True)
class Challenge:
    """A provider's GET check and our answer (Messenger's ``hub.challenge``, X's CRC).

    Attributes:
        status: HTTP status.
        body: Response body.
        content_type: Its MIME type.
    """

    status: int
    body: str
    content_type: str = "text/plain"


Outcome = Literal["sent", "retry", "failed"]


@dataclass(frozen=True)
class SendResult:
    """What happened to one send.

    Attributes:
        outcome: ``sent``; ``retry`` (5xx, timeout, rate limit: try again later); ``failed``
            (can never succeed: window closed, resident blocked the account).
        provider_id: The provider's id of the sent message.
        error: Why it did not go (no message text).
        code: The provider's error code, if any.
        retry_after: Seconds the provider asked us to wait (``Retry-After``).
    """

    outcome: Outcome
    provider_id: str = ""
    error: str = ""
    code: str = ""
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        """The message was accepted by the provider."""
        return self.outcome == "sent"


def numbered_text(message: OutboundMessage) -> str:
    """Return the text with its buttons as a numbered list, for channels without buttons."""
    if not message.buttons:
        return message.text
    lines = [message.text, ""] if message.text else []
    lines += [f"{number}. {button.title}" for number, button in enumerate(message.buttons, 1)]
    lines.append("Reply with the number of your choice.")
    return "\n".join(lines)


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a ``Retry-After`` header given in seconds (HTTP dates are rare here: ignored)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class ChannelAdapter(abc.ABC):
    """Verify, parse and send for one channel (all of its accounts).

    Subclasses set :attr:`channel` and hold the accounts they serve; the webhook calls
    :meth:`verify` on the raw request before anything reads the body, then :meth:`parse`.
    """

    channel: str = ""
    channels: tuple[str, ...] = ()
    """Every channel name this adapter sends for (Twilio serves ``whatsapp`` and ``sms``)."""

    @abc.abstractmethod
    def verify(self, headers: Mapping[str, str], raw_body: bytes, url: str) -> None:
        """Check the request's signature or token over the raw body.

        Args:
            headers: Request headers (any case).
            raw_body: The body exactly as received.
            url: The URL as the provider called it (Twilio signs it).

        Raises:
            SignatureError: The check failed; the request must be refused.
        """

    @abc.abstractmethod
    def read(self, headers: Mapping[str, str], raw_body: bytes) -> Parsed:
        """Turn a verified request into messages, receipts, ignored and rejected events.

        Each event is read on its own: a malformed one is listed in ``rejected`` and never
        costs its siblings; events that are not residents' messages are ``ignored`` or
        become ``receipts``. Every value used is type- and range-checked here.

        Raises:
            PayloadError: The body as a whole cannot be understood.
        """

    def parse(self, headers: Mapping[str, str], raw_body: bytes) -> list[InboundMessage]:
        """Residents' messages of a verified request (see :meth:`read`).

        Raises:
            PayloadError: The body as a whole cannot be understood.
        """
        return self.read(headers, raw_body).messages

    def challenge(self, query: Mapping[str, str]) -> Challenge | None:
        """Answer the provider's GET check, or None when ``query`` is not one."""
        return None

    accepts_get: bool = False
    """A GET with query parameters can be a delivery (Twilio numbers set to GET)."""

    def acknowledgement(self) -> Challenge:
        """What a delivered webhook is answered with (200)."""
        return Challenge(200, "ok")

    @abc.abstractmethod
    async def send(
        self, account: str, recipient: str, message: OutboundMessage, *, channel: str = ""
    ) -> SendResult:
        """Send ``message`` from ``account`` to ``recipient``; never raises for provider errors.

        Args:
            account: The council's account to send from.
            recipient: The resident's id on the channel.
            message: What to send.
            channel: The channel name when one adapter serves several (Twilio: ``sms``).
        """

    def accounts(self) -> Sequence[str]:
        """The account ids this adapter serves."""
        return ()

    def template_for(self, account: str) -> Template | None:
        """The approved template to send when the messaging window has closed, if any."""
        return None

    async def fetch_media(self, account: str, attachment: Attachment, *, max_bytes: int) -> Media:
        """Download a file the resident sent to ``account`` (a photo for a problem report).

        Each adapter fetches the way its provider serves files, with the account's credentials
        where they are needed; by default a channel cannot.

        Raises:
            MediaTooLargeError: The file is over ``max_bytes``.
            MediaError: The file cannot be fetched (unknown account, provider error...).
        """
        raise MediaError(self.channel, "this channel cannot fetch files")

    async def warm_up(self) -> None:  # noqa: B027 - optional hook, most adapters need nothing
        """Build the network clients now (the server calls this before taking traffic).

        A client built on the first send stalls the event loop, and every webhook waiting on
        it, while it loads its TLS context and lazily imported modules.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Release network clients."""
