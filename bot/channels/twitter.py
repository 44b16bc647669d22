"""Twitter/X direct messages through the Account Activity API.

Inbound: the hourly CRC check (``crc_token``) and ``x-twitter-webhooks-signature`` (base64
HMAC-SHA256 of the consumer secret over the raw body); events routed by ``for_user_id``; the
account's own DMs dropped. Outbound: ``POST /2/dm_conversations/with/{id}/messages`` with the
account's OAuth 2.0 user token. DMs have no buttons here: they degrade to numbered text.
Media: a DM's file (``ton.twitter.com``) is fetched with a GET signed with OAuth 1.0a
(:mod:`bot.channels.oauth1`) and the account user's access token and secret, if configured.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bot.channels import checks
from bot.channels.accounts import Section
from bot.channels.base import (
    Attachment,
    Challenge,
    ChannelAdapter,
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
from bot.channels.http import JsonSender
from bot.channels.media import Media, MediaError, download, same_origin
from bot.channels.oauth1 import authorization_header
from bot.errors import ConfigError, PayloadError, SignatureError

__all__ = ["TWITTER_API", "TwitterAccount", "TwitterAdapter", "crc_response"]

_log = logging.getLogger(__name__)

TWITTER_API = "https://api.twitter.com"
TWITTER_MEDIA = "https://ton.twitter.com"
"""Where X serves the files of direct messages (signed with OAuth 1.0a)."""

_OAUTH1_KEYS = ("consumer_key", "oauth1_token", "oauth1_token_secret")


def _location(channel: str, value: Any, ref: str) -> Location | None:
    """A DM's shared location: a ``shared_coordinate`` point or a ``shared_place``.

    A point is GeoJSON (``[longitude, latitude]``); a place gives its bounding box, whose
    centre is used, and its ``full_name`` as the label. A place given by its id alone has no
    coordinates: None (the message is kept).
    """
    data = checks.mapping(channel, value, ref)
    kind = checks.optional_text(channel, data.get("type"), f"{ref}.type")
    shared = checks.mapping(channel, data.get(kind) or {}, f"{ref}.{kind}")
    if kind == "shared_place":
        place = checks.mapping(channel, shared.get("place") or {}, f"{ref}.place")
        label = checks.optional_text(channel, place.get("full_name"), f"{ref}.place.full_name")
        box = checks.mapping(channel, place.get("bounding_box") or {}, f"{ref}.bounding_box")
        corners = checks.items(channel, box.get("coordinates"), f"{ref}.bounding_box")
        ring = checks.items(channel, corners[0] if corners else None, f"{ref}.bounding_box")
        if not ring:
            return None
        longs = [checks.coordinate(channel, c[0], f"{ref}.long", 180) for c in ring]
        lats = [checks.coordinate(channel, c[1], f"{ref}.lat", 90) for c in ring]
        return Location(sum(lats) / len(lats), sum(longs) / len(longs), label)
    point = checks.mapping(channel, shared.get("coordinates") or {}, f"{ref}.coordinates")
    pair = checks.items(channel, point.get("coordinates"), f"{ref}.coordinates")
    if len(pair) != 2:
        raise PayloadError(channel, f"{ref}.coordinates is not [longitude, latitude]")
    return Location(
        checks.coordinate(channel, pair[1], f"{ref}.latitude", 90),
        checks.coordinate(channel, pair[0], f"{ref}.longitude", 180),
    )


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
        consumer_key: The app's API key (OAuth 1.0a, for DM media); empty if not set.
        oauth1_token: The account user's OAuth 1.0a access token; empty if not set.
        oauth1_token_secret: Its secret; empty if not set.
    """

    user_id: str
    access_token: str = field(repr=False)
    consumer_key: str = ""
    oauth1_token: str = field(default="", repr=False)
    oauth1_token_secret: str = field(default="", repr=False)

    @property
    def can_fetch_media(self) -> bool:
        """True when the OAuth 1.0a credentials DM media needs are all set."""
        return bool(self.consumer_key and self.oauth1_token and self.oauth1_token_secret)


class TwitterAdapter(ChannelAdapter):
    """X direct messages for every account of one developer app.

    Args:
        accounts: The accounts served.
        consumer_secret: The app's consumer secret (CRC and webhook signatures).
        api_base_url: API base URL (tests: a local fake).
        media_base_url: Where DM files are served (tests: a local fake).
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
        media_base_url: str = TWITTER_MEDIA,
        timeout: float = 10.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._accounts = {account.user_id: account for account in accounts}
        self._consumer_secret = consumer_secret
        self.api_base_url = api_base_url.rstrip("/")
        self.media_base_url = media_base_url.rstrip("/")
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
            item.only({"user_id", "access_token", *_OAUTH1_KEYS})
            oauth1 = [item.text(name, "") for name in _OAUTH1_KEYS]
            if any(oauth1) and not all(oauth1):
                missing = next(
                    name for name, value in zip(_OAUTH1_KEYS, oauth1, strict=True) if not value
                )
                raise ConfigError(
                    item.path, item.where(missing), "is required with the other OAuth 1.0a keys"
                )
            accounts.append(
                TwitterAccount(item.text("user_id"), item.secret("access_token"), *oauth1)
            )
        options: dict[str, Any] = {
            "consumer_secret": section.secret("consumer_secret"),
            "api_base_url": section.text("api_base_url", TWITTER_API),
            "media_base_url": section.text("media_base_url", TWITTER_MEDIA),
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

    def challenge(self, query: Mapping[str, str]) -> Challenge | None:
        """X's CRC check (``crc_token``); None for other GETs."""
        if "crc_token" not in query:
            return None
        token = query["crc_token"]
        if not token:
            return Challenge(400, "crc_token missing")
        return Challenge(200, json.dumps(self.crc(token)), "application/json")

    def read(self, headers: Mapping[str, str], raw_body: bytes) -> Parsed:
        """Residents' DMs to a known account; every other event kind is acknowledged.

        ``user_event`` (an authorisation revoked) has no ``for_user_id`` and is ignored with
        a warning, as are follows, likes, typing and read indicators. A DM that shares a
        location keeps it (``message_data.attachment.location``).

        Raises:
            PayloadError: Not JSON or not an object.
        """
        payload = checks.load_json(self.channel, raw_body)
        if not isinstance(payload, dict):
            raise PayloadError(self.channel, "body is not an object")
        parsed = Parsed()
        if "user_event" in payload:
            _log.warning("twitter: user_event (authorisation revoked) received")
            parsed.ignored.append("user_event")
        kinds = [name for name in payload if name.endswith("_events")]
        if "for_user_id" not in payload:
            parsed.ignored.extend(kinds)
            return parsed
        try:
            account = checks.identifier(self.channel, payload["for_user_id"], "for_user_id")
            events = checks.items(
                self.channel, payload.get("direct_message_events"), "direct_message_events"
            )
            users: Mapping[str, Any] = (
                payload["users"] if isinstance(payload.get("users"), dict) else {}
            )
        except PayloadError as exc:
            parsed.rejected.append(Rejected("for_user_id", exc.reason))
            return parsed
        parsed.ignored.extend(name for name in kinds if name != "direct_message_events")
        if account not in self._accounts:
            parsed.ignored.append(f"unknown account {account}")
            return parsed
        for number, event in enumerate(events):
            where = f"direct_message_events[{number}]"
            try:
                found = self._event(account, event, users, where)
            except PayloadError as exc:
                parsed.rejected.append(Rejected(where, exc.reason))
                continue
            except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
                parsed.rejected.append(Rejected(where, f"malformed ({type(exc).__name__})"))
                continue
            if isinstance(found, str):
                parsed.ignored.append(f"{where}: {found}")
            else:
                parsed.messages.append(found)
        return parsed

    def _event(
        self, account: str, event: Any, users: Mapping[str, Any], ref: str
    ) -> InboundMessage | str:
        channel = self.channel
        event = checks.mapping(channel, event, ref)
        if event.get("type") != "message_create":
            return str(event.get("type") or "unknown event")
        create = checks.mapping(channel, event.get("message_create"), f"{ref}.message_create")
        sender = checks.identifier(channel, create.get("sender_id"), f"{ref}.sender_id")
        if sender == account:
            return "own message"  # the account's own DMs come back too
        data = checks.mapping(channel, create.get("message_data") or {}, f"{ref}.message_data")
        attachment = checks.mapping(channel, data.get("attachment") or {}, f"{ref}.attachment")
        media = checks.mapping(channel, attachment.get("media") or {}, f"{ref}.media")
        attachments: tuple[Attachment, ...] = ()
        if media.get("media_url_https") is not None:
            url = checks.text(channel, media["media_url_https"], f"{ref}.media_url_https")
            kind = checks.optional_text(channel, media.get("type"), f"{ref}.media.type")
            attachments = (Attachment(kind or "photo", url),)
        location = None
        if attachment.get("location") is not None:
            location = _location(channel, attachment["location"], f"{ref}.location")
        quick = checks.mapping(
            channel, data.get("quick_reply_response") or {}, f"{ref}.quick_reply_response"
        )
        user: Mapping[str, Any] = users[sender] if isinstance(users.get(sender), dict) else {}
        message_id = checks.identifier(channel, event.get("id"), f"{ref}.id")
        return InboundMessage(
            channel=channel,
            account=account,
            sender=sender,
            message_id=message_id,
            text=checks.optional_text(channel, data.get("text"), f"{ref}.text"),
            received_at=checks.timestamp(
                channel, event.get("created_timestamp"), f"{ref}.created_timestamp", per_second=1000
            ),
            display_name=checks.optional_text(channel, user.get("name"), f"{ref}.users.name"),
            attachments=attachments,
            location=location,
            quick_reply_payload=checks.optional_text(
                channel, quick.get("metadata"), f"{ref}.quick_reply_response.metadata"
            )
            or None,
            raw_ref=f"direct_message_events[{message_id}]",
        )

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

    async def fetch_media(self, account: str, attachment: Attachment, *, max_bytes: int) -> Media:
        """A DM's file, fetched with a GET signed with the account's OAuth 1.0a credentials.

        The signed request goes only to X's media host (``media_base_url``) or API
        (``api_base_url``): a URL elsewhere is refused before anything is sent.

        Raises:
            MediaTooLargeError: Over ``max_bytes``.
            MediaError: Unknown account, no OAuth 1.0a credentials, a URL off X's hosts, or
                X's refusal.
        """
        found = self._accounts.get(account)
        if found is None:
            raise MediaError(self.channel, "unknown account")
        if not found.can_fetch_media:
            raise MediaError(
                self.channel,
                "no OAuth 1.0a credentials (consumer_key, oauth1_token, oauth1_token_secret)",
            )
        url = attachment.url
        if not any(same_origin(url, base) for base in (self.media_base_url, self.api_base_url)):
            raise MediaError(self.channel, "media URL is not on X's media host")
        signed = authorization_header(
            "GET",
            url,
            consumer_key=found.consumer_key,
            consumer_secret=self._consumer_secret,
            token=found.oauth1_token,
            token_secret=found.oauth1_token_secret,
            nonce=secrets.token_hex(16),
            timestamp=str(int(time.time())),
        )
        return await download(
            self.channel, url, max_bytes=max_bytes, headers={"Authorization": signed}
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
