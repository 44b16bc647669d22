"""Facebook Messenger through the Meta Graph API.

Inbound: ``X-Hub-Signature-256`` (HMAC-SHA256 of the app secret over the raw body), page
events routed by ``entry[].id``; echoes of the page's own messages dropped. Outbound:
``POST /{version}/me/messages`` with the page's token; agents' replies after 24 hours use the
``HUMAN_AGENT`` tag.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

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
from bot.channels.http import JsonSender
from bot.errors import PayloadError, SignatureError

__all__ = ["GRAPH_URL", "MessengerAdapter", "MessengerPage"]

_log = logging.getLogger(__name__)

GRAPH_URL = "https://graph.facebook.com"
_MAX_QUICK_REPLIES = 13
_QUICK_REPLY_TITLE = 20
# (code, subcode) pairs that no retry fixes: outside the window, user unavailable or blocked
_PERMANENT = {(10, 2018278), (10, 2018065), (551, 1545041), (100, 2018001), (200, 1545041)}
_RATE_LIMIT_CODES = {4, 17, 32, 613}


@dataclass(frozen=True)
class MessengerPage:
    """One of the council's Facebook pages.

    Attributes:
        page_id: The page's id (``entry[].id`` of its events).
        page_token: Page access token for sending.
    """

    page_id: str
    page_token: str = field(repr=False)


class MessengerAdapter(ChannelAdapter):
    """Messenger for every page of one Meta app.

    Args:
        pages: The pages served.
        app_secret: The app's secret (signs every webhook of every page).
        verify_token: Our token for the ``hub.challenge`` subscription check.
        api_base_url: Graph API base URL (tests: a local fake).
        api_version: Graph API version in the path.
        timeout: Seconds before a send counts as timed out.
        session: An aiohttp session to send with (the caller closes it).
    """

    channel = "messenger"
    channels = ("messenger",)

    def __init__(
        self,
        pages: Sequence[MessengerPage],
        *,
        app_secret: str,
        verify_token: str,
        api_base_url: str = GRAPH_URL,
        api_version: str = "v19.0",
        timeout: float = 10.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._pages = {page.page_id: page for page in pages}
        self._app_secret = app_secret.encode()
        self._verify_token = verify_token
        self.api_base_url = api_base_url.rstrip("/")
        self.api_version = api_version
        self._sender = JsonSender(timeout, session)

    @classmethod
    def from_config(cls, section: Section, **overrides: Any) -> MessengerAdapter:
        """Build from a ``credentials.yml`` section.

        Raises:
            ConfigError: A key is unknown or a value is wrong.
            MissingSecretError: A referenced environment variable is unset.
        """
        pages = []
        for item in section.accounts():
            item.only({"page_id", "page_token"})
            pages.append(MessengerPage(item.text("page_id"), item.secret("page_token")))
        options: dict[str, Any] = {
            "app_secret": section.secret("app_secret"),
            "verify_token": section.secret("verify_token"),
            "api_base_url": section.text("api_base_url", GRAPH_URL),
            "api_version": section.text("api_version", "v19.0"),
        }
        options.update(overrides)
        return cls(pages, **options)

    def accounts(self) -> Sequence[str]:
        """The page ids served."""
        return list(self._pages)

    def subscription_challenge(self, query: Mapping[str, str]) -> str | None:
        """Answer Meta's subscription check: the challenge when our token matches, else None."""
        if query.get("hub.mode") != "subscribe":
            return None
        if not constant_time_equal(self._verify_token, query.get("hub.verify_token", "")):
            return None
        return query.get("hub.challenge") or None

    def verify(self, headers: Mapping[str, str], raw_body: bytes, url: str) -> None:
        """Check ``X-Hub-Signature-256`` over the raw body.

        Raises:
            SignatureError: Missing, malformed or wrong signature.
        """
        given = header(headers, "X-Hub-Signature-256")
        if not given.startswith("sha256="):
            raise SignatureError(self.channel, "no X-Hub-Signature-256 header")
        expected = "sha256=" + hmac.new(self._app_secret, raw_body, hashlib.sha256).hexdigest()
        if not constant_time_equal(expected, given.strip()):
            raise SignatureError(self.channel, "X-Hub-Signature-256 does not match")

    def parse(self, headers: Mapping[str, str], raw_body: bytes) -> list[InboundMessage]:
        """Residents' messages and postbacks of every known page in the batch.

        Raises:
            PayloadError: Not JSON, not a page object, or malformed events.
        """
        try:
            payload = json.loads(raw_body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise PayloadError(self.channel, "body is not JSON") from exc
        if not isinstance(payload, dict) or payload.get("object") != "page":
            raise PayloadError(self.channel, "not a page webhook")
        entries = payload.get("entry")
        if not isinstance(entries, list):
            raise PayloadError(self.channel, "entry is not a list")
        messages: list[InboundMessage] = []
        try:
            for entry in entries:
                page_id = str(entry["id"])
                if page_id not in self._pages:
                    _log.warning("messenger: event for unknown page %s dropped", page_id)
                    continue
                for index, event in enumerate(entry.get("messaging") or ()):
                    found = self._event(page_id, event, f"entry[{page_id}].messaging[{index}]")
                    if found is not None:
                        messages.append(found)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PayloadError(self.channel, f"malformed event ({type(exc).__name__})") from exc
        return messages

    def _event(self, page_id: str, event: Mapping[str, Any], ref: str) -> InboundMessage | None:
        sender = str(event["sender"]["id"])
        received_at = float(event.get("timestamp", 0)) / 1000
        if "postback" in event:
            postback = event["postback"]
            return InboundMessage(
                channel=self.channel,
                account=page_id,
                sender=sender,
                message_id=str(postback.get("mid") or f"postback:{sender}:{event['timestamp']}"),
                text=str(postback.get("title", "")),
                received_at=received_at,
                quick_reply_payload=str(postback.get("payload", "")) or None,
                raw_ref=ref,
            )
        message = event.get("message")
        if not message or message.get("is_echo") or sender == page_id:
            return None  # delivery/read receipts, and the page's own messages
        attachments: list[Attachment] = []
        location = None
        for item in message.get("attachments") or ():
            data = item.get("payload") or {}
            if item.get("type") == "location" and "coordinates" in data:
                coordinates = data["coordinates"]
                location = Location(
                    float(coordinates["lat"]), float(coordinates["long"]), item.get("title", "")
                )
            else:
                attachments.append(
                    Attachment(str(item.get("type", "file")), str(data.get("url", "")))
                )
        quick_reply = message.get("quick_reply") or {}
        return InboundMessage(
            channel=self.channel,
            account=page_id,
            sender=sender,
            message_id=str(message["mid"]),
            text=str(message.get("text", "")),
            received_at=received_at,
            attachments=tuple(attachments),
            location=location,
            quick_reply_payload=str(quick_reply["payload"]) if "payload" in quick_reply else None,
            raw_ref=ref,
        )

    def request_body(self, recipient: str, message: OutboundMessage) -> dict[str, Any]:
        """The Send API body for ``message`` (quick replies, or numbered text beyond 13)."""
        content: dict[str, Any]
        buttons = message.buttons
        if buttons and len(buttons) <= _MAX_QUICK_REPLIES:
            content = {
                "text": message.text,
                "quick_replies": [
                    {
                        "content_type": "text",
                        "title": button.title[:_QUICK_REPLY_TITLE],
                        "payload": button.payload or button.title,
                    }
                    for button in buttons
                ],
            }
        else:
            content = {"text": numbered_text(message)}
        body: dict[str, Any] = {"recipient": {"id": recipient}, "message": content}
        if message.tag:
            body.update(messaging_type="MESSAGE_TAG", tag=message.tag)
        else:
            body["messaging_type"] = "RESPONSE"
        return body

    async def send(
        self, account: str, recipient: str, message: OutboundMessage, *, channel: str = ""
    ) -> SendResult:
        """Send from page ``account`` to the resident's PSID ``recipient``."""
        page = self._pages.get(account)
        if page is None:
            return SendResult("failed", error=f"unknown page {account}")
        return await self._sender.post(
            f"{self.api_base_url}/{self.api_version}/me/messages",
            self.request_body(recipient, message),
            params={"access_token": page.page_token},
            id_of=lambda body: str(body.get("message_id", "")),
            classify=_classify,
        )

    async def aclose(self) -> None:
        """Close the HTTP session."""
        await self._sender.aclose()


def _classify(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str]
) -> SendResult | None:
    error = body.get("error") if isinstance(body.get("error"), dict) else None
    if not error:
        return None
    code, subcode = int(error.get("code") or 0), int(error.get("error_subcode") or 0)
    label = f"{code}/{subcode}" if subcode else str(code)
    if (code, subcode) in _PERMANENT:
        return SendResult("failed", error="resident unreachable or window closed", code=label)
    if code in _RATE_LIMIT_CODES:
        return SendResult("retry", error="rate limited", code=label)
    return None
