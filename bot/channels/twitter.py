"""Twitter/X direct messages through the Account Activity API.

Inbound: the hourly CRC check (``crc_token``) and ``x-twitter-webhooks-signature`` (base64
HMAC-SHA256 of the consumer secret over the raw body); events routed by ``for_user_id``; the
account's own DMs dropped. Outbound: ``POST /2/dm_conversations/with/{id}/messages`` with the
account's OAuth 2.0 user token. DMs have no buttons here: they degrade to numbered text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bot.channels.accounts import Section
from bot.channels.base import (
    Attachment,
    ChannelAdapter,
    InboundMessage,
    OutboundMessage,
    SendResult,
    constant_time_equal,
    header,
    numbered_text,
)
from bot.channels.http import JsonSender
from bot.errors import PayloadError, SignatureError

__all__ = ["TWITTER_API", "TwitterAccount", "TwitterAdapter", "crc_response"]

_log = logging.getLogger(__name__)

TWITTER_API = "https://api.twitter.com"


def crc_response(consumer_secret: str, crc_token: str) -> dict[str, str]:
    """The JSON answer to X's CRC check for ``crc_token``."""
    digest = hmac.new(consumer_secret.encode(), crc_token.encode(), hashlib.sha256).digest()
    return {"response_token": "sha256=" + base64.b64encode(digest).decode()}


@dataclass(frozen=True)
class TwitterAccount:
    """One of the council's X accounts.

    Attributes:
        user_id: The account's numeric id (``for_user_id`` of its events).
        access_token: OAuth 2.0 user-context token with ``dm.write``.
    """

    user_id: str
    access_token: str = field(repr=False)


class TwitterAdapter(ChannelAdapter):
    """X direct messages for every account of one developer app.

    Args:
        accounts: The accounts served.
        consumer_secret: The app's consumer secret (CRC and webhook signatures).
        api_base_url: API base URL (tests: a local fake).
        timeout: Seconds before a send counts as timed out.
        session: An aiohttp session to send with (the caller closes it).
    """

    channel = "twitter"
    channels = ("twitter",)

    def __init__(
        self,
        accounts: Sequence[TwitterAccount],
        *,
        consumer_secret: str,
        api_base_url: str = TWITTER_API,
        timeout: float = 10.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._accounts = {account.user_id: account for account in accounts}
        self._consumer_secret = consumer_secret
        self.api_base_url = api_base_url.rstrip("/")
        self._sender = JsonSender(timeout, session)

    @classmethod
    def from_config(cls, section: Section, **overrides: Any) -> TwitterAdapter:
        """Build from a ``credentials.yml`` section.

        Raises:
            ConfigError: A key is unknown or a value is wrong.
            MissingSecretError: A referenced environment variable is unset.
        """
        accounts = []
        for item in section.accounts():
            item.only({"user_id", "access_token"})
            accounts.append(TwitterAccount(item.text("user_id"), item.secret("access_token")))
        options: dict[str, Any] = {
            "consumer_secret": section.secret("consumer_secret"),
            "api_base_url": section.text("api_base_url", TWITTER_API),
        }
        options.update(overrides)
        return cls(accounts, **options)

    def accounts(self) -> Sequence[str]:
        """The user ids served."""
        return list(self._accounts)

    def crc(self, crc_token: str) -> dict[str, str]:
        """Answer X's CRC check."""
        return crc_response(self._consumer_secret, crc_token)

    def verify(self, headers: Mapping[str, str], raw_body: bytes, url: str) -> None:
        """Check ``x-twitter-webhooks-signature`` over the raw body.

        Raises:
            SignatureError: Missing or wrong signature.
        """
        given = header(headers, "x-twitter-webhooks-signature")
        if not given.startswith("sha256="):
            raise SignatureError(self.channel, "no x-twitter-webhooks-signature header")
        digest = hmac.new(self._consumer_secret.encode(), raw_body, hashlib.sha256).digest()
        if not constant_time_equal("sha256=" + base64.b64encode(digest).decode(), given.strip()):
            raise SignatureError(self.channel, "x-twitter-webhooks-signature does not match")

    def parse(self, headers: Mapping[str, str], raw_body: bytes) -> list[InboundMessage]:
        """Residents' DMs to a known account (other event kinds are ignored).

        Raises:
            PayloadError: Not JSON or malformed DM events.
        """
        try:
            payload = json.loads(raw_body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise PayloadError(self.channel, "body is not JSON") from exc
        if not isinstance(payload, dict) or "for_user_id" not in payload:
            raise PayloadError(self.channel, "for_user_id missing")
        account = str(payload["for_user_id"])
        events = payload.get("direct_message_events")
        if events is None:
            return []  # follows, likes, typing indicators: not messages
        if account not in self._accounts:
            _log.warning("twitter: events for unknown account %s dropped", account)
            return []
        users = payload.get("users") or {}
        messages = []
        try:
            for event in events:
                if event.get("type") != "message_create":
                    continue
                create = event["message_create"]
                sender = str(create["sender_id"])
                if sender == account:
                    continue  # the account's own DMs come back too
                data = create.get("message_data") or {}
                media = (data.get("attachment") or {}).get("media") or {}
                attachments = (
                    (Attachment(str(media.get("type", "photo")), str(media["media_url_https"])),)
                    if media.get("media_url_https")
                    else ()
                )
                quick = data.get("quick_reply_response") or {}
                messages.append(
                    InboundMessage(
                        channel=self.channel,
                        account=account,
                        sender=sender,
                        message_id=str(event["id"]),
                        text=str(data.get("text", "")),
                        received_at=int(event.get("created_timestamp") or time.time() * 1000)
                        / 1000,
                        display_name=str((users.get(sender) or {}).get("name", "")),
                        attachments=attachments,
                        quick_reply_payload=str(quick["metadata"]) if "metadata" in quick else None,
                        raw_ref=f"direct_message_events[{event['id']}]",
                    )
                )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PayloadError(self.channel, f"malformed DM event ({type(exc).__name__})") from exc
        return messages

    async def send(
        self, account: str, recipient: str, message: OutboundMessage, *, channel: str = ""
    ) -> SendResult:
        """Send a DM from ``account`` to the user id ``recipient``."""
        found = self._accounts.get(account)
        if found is None:
            return SendResult("failed", error=f"unknown account {account}")
        return await self._sender.post(
            f"{self.api_base_url}/2/dm_conversations/with/{recipient}/messages",
            {"text": numbered_text(message)},
            headers={"Authorization": f"Bearer {found.access_token}"},
            id_of=lambda body: str((body.get("data") or {}).get("dm_event_id", "")),
            classify=_classify,
        )

    async def aclose(self) -> None:
        """Close the HTTP session."""
        await self._sender.aclose()


def _classify(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str]
) -> SendResult | None:
    if status == 403:
        # the resident blocked the account or does not accept DMs from it
        return SendResult("failed", error="resident does not accept DMs", code="403")
    if status == 429:
        reset = headers.get("x-rate-limit-reset", "")
        wait = max(0.0, float(reset) - time.time()) if reset.isdigit() else None
        return SendResult("retry", error="rate limited", code="429", retry_after=wait)
    return None
