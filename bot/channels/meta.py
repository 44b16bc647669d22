"""What Messenger and Instagram direct messages share: Meta's webhook and Send API.

Both come from one Meta app: ``X-Hub-Signature-256`` (HMAC-SHA256 of the app secret over the
raw body), the ``hub.challenge`` subscription check, ``entry[]`` routed by ``entry[].id`` (a
page, or an Instagram professional account) and ``messaging[]`` events of the same shapes;
replies go to ``POST /{version}/me/messages`` with the account's token, the ``HUMAN_AGENT``
tag after 24 hours. :class:`MetaAdapter` reads every documented ``messaging`` event:

- ``message`` (text, attachments, location, quick reply) and ``postback``: residents' messages;
- ``delivery`` (``mids`` and/or ``watermark``) and ``read`` (``watermark``, or ``mid`` on
  Instagram): receipts for :mod:`bot.channels.delivery`;
- echoes of our own messages, deleted (unsent) and unsupported messages, edits, reactions,
  opt-ins, referrals, policy-enforcement notices, handovers, account linking, ``standby``
  and ``changes`` (comments, mentions): acknowledged and ignored (policy notices are logged
  as warnings). Events without ``sender.id`` (a plugin's ``user_ref``) cannot be answered in
  a conversation and are ignored too.

Each event is read on its own: a malformed one is rejected (dead-lettered by the webhook)
and never costs another event in the same POST.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import aiohttp

from bot.channels import checks
from bot.channels.accounts import Section
from bot.channels.base import (
    Attachment,
    Challenge,
    ChannelAdapter,
    DeliveryStatus,
    InboundMessage,
    Location,
    OutboundMessage,
    Parsed,
    Receipt,
    Rejected,
    SendResult,
    constant_time_equal,
    header,
    numbered_text,
    retry_after_seconds,
)
from bot.channels.http import JsonSender
from bot.channels.media import Media, MediaError, download, same_origin
from bot.errors import PayloadError, SignatureError

__all__ = ["GRAPH_URL", "MetaAccount", "MetaAdapter"]

_log = logging.getLogger(__name__)

GRAPH_URL = "https://graph.facebook.com"
_MAX_QUICK_REPLIES = 13
_QUICK_REPLY_TITLE = 20
# (code, subcode) pairs that no retry fixes: outside the window, user unavailable or blocked
_PERMANENT = {(10, 2018278), (10, 2018065), (551, 1545041), (100, 2018001), (200, 1545041)}
_RATE_LIMIT_CODES = {4, 17, 32, 613}
# messaging events that are not residents' messages and need nothing from us
_IGNORED_EVENTS = (
    "message_edit",
    "reaction",
    "optin",
    "referral",
    "account_linking",
    "pass_thread_control",
    "take_thread_control",
    "request_thread_control",
    "app_roles",
    "messaging_feedback",
    "game_play",
    "policy_enforcement",
)


@dataclass(frozen=True)
class MetaAccount:
    """One of the council's pages or Instagram professional accounts.

    Attributes:
        account_id: ``entry[].id`` of its events (page id, or Instagram account id).
        token: Access token for sending (a page token).
    """

    account_id: str
    token: str = field(repr=False)


class MetaAdapter(ChannelAdapter):
    """Verify, read and send for one Meta messaging product (subclasses name it).

    Args:
        accounts: The pages or Instagram accounts served.
        app_secret: The app's secret (signs every webhook of every account).
        verify_token: Our token for the ``hub.challenge`` subscription check.
        api_base_url: Graph API base URL (tests: a local fake).
        api_version: Graph API version in the path.
        timeout: Seconds before a send counts as timed out.
        session: An aiohttp session to send with (the caller closes it).
        clock: Unix seconds (for events that carry no timestamp).
    """

    webhook_object: ClassVar[str] = ""
    """The webhook's ``object`` (``page``, ``instagram``)."""
    account_keys: ClassVar[tuple[str, str]] = ("", "")
    """The names of an account's id and token in ``credentials.yml``."""

    def __init__(
        self,
        accounts: Sequence[MetaAccount],
        *,
        app_secret: str,
        verify_token: str,
        api_base_url: str = GRAPH_URL,
        api_version: str = "v19.0",
        timeout: float = 10.0,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._accounts = {account.account_id: account for account in accounts}
        self.clock = clock
        self._app_secret = app_secret.encode()
        self._verify_token = verify_token
        self.api_base_url = api_base_url.rstrip("/")
        self.api_version = api_version
        self._sender = JsonSender(timeout, session)

    @classmethod
    def from_config(cls, section: Section, **overrides: Any) -> Self:
        """Build from a ``credentials.yml`` section.

        Keys: ``app_secret``, ``verify_token``, ``api_version``, ``api_base_url`` and
        ``accounts`` (each with the two keys of :attr:`account_keys`).

        Raises:
            ConfigError: A key is unknown or a value is wrong.
            MissingSecretError: A referenced environment variable is unset.
        """
        id_key, token_key = cls.account_keys
        accounts = []
        for item in section.accounts():
            item.only({id_key, token_key})
            accounts.append(MetaAccount(item.text(id_key), item.secret(token_key)))
        options: dict[str, Any] = {
            "app_secret": section.secret("app_secret"),
            "verify_token": section.secret("verify_token"),
            "api_base_url": section.text("api_base_url", GRAPH_URL),
            "api_version": section.text("api_version", "v19.0"),
        }
        options.update(overrides)
        return cls(accounts, **options)

    def accounts(self) -> Sequence[str]:
        """The account ids served."""
        return list(self._accounts)

    def subscription_challenge(self, query: Mapping[str, str]) -> str | None:
        """Answer Meta's subscription check: the challenge when our token matches, else None."""
        if query.get("hub.mode") != "subscribe":
            return None
        if not constant_time_equal(self._verify_token, query.get("hub.verify_token", "")):
            return None
        return query.get("hub.challenge") or None

    def challenge(self, query: Mapping[str, str]) -> Challenge | None:
        """The ``hub.challenge`` answer (403 when the token is wrong); None for other GETs."""
        if "hub.mode" not in query:
            return None
        answer = self.subscription_challenge(query)
        return Challenge(200, answer) if answer else Challenge(403, "forbidden")

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

    def read(self, headers: Mapping[str, str], raw_body: bytes) -> Parsed:
        """Messages, postbacks and receipts of every known account in the batch.

        Raises:
            PayloadError: Not JSON, not this product's object, or ``entry`` not a list.
        """
        payload = checks.load_json(self.channel, raw_body)
        if not isinstance(payload, dict) or payload.get("object") != self.webhook_object:
            raise PayloadError(self.channel, f"not an {self.webhook_object!r} webhook")
        if not isinstance(payload.get("entry"), list):
            raise PayloadError(self.channel, "entry is not a list")
        parsed = Parsed()
        for number, entry in enumerate(payload["entry"]):
            self._entry(entry, f"entry[{number}]", parsed)
        return parsed

    def _entry(self, entry: Any, ref: str, parsed: Parsed) -> None:
        try:
            entry = checks.mapping(self.channel, entry, ref)
            account = checks.identifier(self.channel, entry.get("id"), f"{ref}.id")
            events = checks.items(self.channel, entry.get("messaging"), f"{ref}.messaging")
        except PayloadError as exc:
            parsed.rejected.append(Rejected(ref, exc.reason))
            return
        if account not in self._accounts:
            parsed.ignored.append(f"{ref}: unknown account {account}")
            return
        for other in ("standby", "changes"):
            if entry.get(other):
                parsed.ignored.append(f"{ref}.{other}")
        for number, event in enumerate(events):
            where = f"{ref}.messaging[{number}]"
            try:
                self._event(account, checks.mapping(self.channel, event, where), where, parsed)
            except PayloadError as exc:
                parsed.rejected.append(Rejected(where, exc.reason))
            except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
                parsed.rejected.append(Rejected(where, f"malformed ({type(exc).__name__})"))

    def _event(self, account: str, event: Mapping[str, Any], ref: str, parsed: Parsed) -> None:
        channel = self.channel
        if "policy_enforcement" in event:
            _log.warning("%s: policy enforcement notice for %s: %s", channel, account, ref)
        sender_data = event.get("sender")
        if not isinstance(sender_data, dict) or sender_data.get("id") is None:
            # policy notices, plugin opt-ins, chat-plugin guests (user_ref): no conversation
            parsed.ignored.append(f"{ref}: no sender.id")
            return
        sender = checks.identifier(channel, sender_data["id"], f"{ref}.sender.id")
        # the documented delivery example has no timestamp: absent means now, wrong is rejected
        given = event.get("timestamp")
        at = (
            self.clock()
            if given is None
            else checks.timestamp(channel, given, f"{ref}.timestamp", per_second=1000)
        )
        if "delivery" in event or "read" in event:
            parsed.receipts.append(self._receipt(account, sender, event, at, ref))
            return
        if "postback" in event:
            parsed.messages.append(self._postback(account, sender, event, at, ref))
            return
        message = event.get("message")
        if message is None:
            kind = next((name for name in _IGNORED_EVENTS if name in event), "unknown event")
            parsed.ignored.append(f"{ref}: {kind}")
            return
        message = checks.mapping(channel, message, f"{ref}.message")
        if message.get("is_echo") or sender == account:
            parsed.ignored.append(f"{ref}: echo")
            return
        if message.get("is_deleted") or message.get("is_unsupported"):
            parsed.ignored.append(f"{ref}: deleted or unsupported message")
            return
        parsed.messages.append(self._message(account, sender, message, at, ref))

    def _receipt(
        self, account: str, sender: str, event: Mapping[str, Any], at: float, ref: str
    ) -> Receipt:
        name = "delivery" if "delivery" in event else "read"
        data = checks.mapping(self.channel, event[name], f"{ref}.{name}")
        ids = [
            checks.identifier(self.channel, mid, f"{ref}.{name}.mids")
            for mid in checks.items(self.channel, data.get("mids"), f"{ref}.{name}.mids")
        ]
        if data.get("mid") is not None:  # Instagram names the message read
            ids.append(checks.identifier(self.channel, data["mid"], f"{ref}.{name}.mid"))
        watermark = None
        if data.get("watermark") is not None:
            watermark = checks.timestamp(
                self.channel, data["watermark"], f"{ref}.{name}.watermark", per_second=1000
            )
        status: DeliveryStatus = "delivered" if name == "delivery" else "read"
        return Receipt(self.channel, account, sender, status, at, tuple(ids), watermark)

    def _postback(
        self, account: str, sender: str, event: Mapping[str, Any], at: float, ref: str
    ) -> InboundMessage:
        postback = checks.mapping(self.channel, event["postback"], f"{ref}.postback")
        mid = postback.get("mid")
        message_id = (
            checks.identifier(self.channel, mid, f"{ref}.postback.mid")
            if mid is not None
            else f"postback:{sender}:{int(at * 1000)}"
        )
        payload = checks.optional_text(self.channel, postback.get("payload"), f"{ref}.payload")
        return InboundMessage(
            channel=self.channel,
            account=account,
            sender=sender,
            message_id=message_id,
            text=checks.optional_text(self.channel, postback.get("title"), f"{ref}.title"),
            received_at=at,
            quick_reply_payload=payload or None,
            raw_ref=ref,
        )

    def _message(
        self, account: str, sender: str, message: Mapping[str, Any], at: float, ref: str
    ) -> InboundMessage:
        channel = self.channel
        attachments: list[Attachment] = []
        location = None
        where = f"{ref}.message.attachments"
        for number, item in enumerate(checks.items(channel, message.get("attachments"), where)):
            item = checks.mapping(channel, item, f"{where}[{number}]")
            kind = checks.optional_text(channel, item.get("type"), f"{where}[{number}].type")
            data = item.get("payload") or {}
            data = checks.mapping(channel, data, f"{where}[{number}].payload")
            if kind == "location" and "coordinates" in data:
                point = checks.mapping(channel, data["coordinates"], f"{where}.coordinates")
                location = Location(
                    checks.coordinate(channel, point.get("lat"), f"{where}.lat", 90),
                    checks.coordinate(channel, point.get("long"), f"{where}.long", 180),
                    checks.optional_text(channel, item.get("title"), f"{where}.title"),
                )
                continue
            url = checks.optional_text(channel, data.get("url"), f"{where}[{number}].url")
            attachments.append(Attachment(kind or "file", url))
        quick = checks.mapping(channel, message.get("quick_reply") or {}, f"{ref}.quick_reply")
        payload = checks.optional_text(channel, quick.get("payload"), f"{ref}.quick_reply")
        return InboundMessage(
            channel=channel,
            account=account,
            sender=sender,
            message_id=checks.identifier(channel, message.get("mid"), f"{ref}.message.mid"),
            text=checks.optional_text(channel, message.get("text"), f"{ref}.message.text"),
            received_at=at,
            attachments=tuple(attachments),
            location=location,
            quick_reply_payload=payload or None,
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
        """Send from ``account`` to the resident's scoped id ``recipient``."""
        found = self._accounts.get(account)
        if found is None:
            return SendResult("failed", error=f"unknown account {account}")
        return await self._sender.post(
            f"{self.api_base_url}/{self.api_version}/me/messages",
            self.request_body(recipient, message),
            params={"access_token": found.token},
            id_of=lambda body: str(body.get("message_id", "")),
            classify=_classify,
        )

    async def fetch_media(self, account: str, attachment: Attachment, *, max_bytes: int) -> Media:
        """An attachment's ``payload.url``: Meta's signed CDN address (no token needed).

        The address expires within hours, so the form fetches it as soon as it arrives.

        Raises:
            MediaTooLargeError: Over ``max_bytes``.
            MediaError: Unknown account, not an https address, or the CDN's refusal.
        """
        if account not in self._accounts:
            raise MediaError(self.channel, "unknown account")
        url = attachment.url
        if not url.startswith("https://") and not same_origin(url, self.api_base_url):
            raise MediaError(self.channel, "not an https address")
        return await download(self.channel, url, max_bytes=max_bytes)

    async def aclose(self) -> None:
        """Close the HTTP session."""
        await self._sender.aclose()


def _classify(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str]
) -> SendResult | None:
    error = body.get("error") if isinstance(body.get("error"), dict) else None
    if not error:
        return None
    try:
        code, subcode = int(error.get("code") or 0), int(error.get("error_subcode") or 0)
    except (TypeError, ValueError):
        return None
    label = f"{code}/{subcode}" if subcode else str(code)
    if (code, subcode) in _PERMANENT:
        return SendResult("failed", error="resident unreachable or window closed", code=label)
    if code in _RATE_LIMIT_CODES:
        wait = retry_after_seconds(header(headers, "Retry-After"))
        if wait is None:
            wait = _time_to_regain_access(header(headers, "X-Business-Use-Case-Usage"))
        return SendResult("retry", error="rate limited", code=label, retry_after=wait)
    return None


def _time_to_regain_access(usage: str) -> float | None:
    """Seconds until Meta lifts a business use case's rate limit, from its usage header.

    The header is JSON: each business object id maps to a list of usage entries, whose
    ``estimated_time_to_regain_access`` is in minutes; the longest wait wins. Anything
    unreadable is None (the outbox's own backoff applies).
    """
    try:
        objects = json.loads(usage) if usage else None
    except ValueError:
        return None
    minutes = [
        entry["estimated_time_to_regain_access"]
        for entries in (objects.values() if isinstance(objects, dict) else ())
        if isinstance(entries, list)
        for entry in entries
        if isinstance(entry, dict)
        and isinstance(entry.get("estimated_time_to_regain_access"), int | float)
        and not isinstance(entry.get("estimated_time_to_regain_access"), bool)
    ]
    longest = max(minutes, default=0)
    return float(longest) * 60.0 if longest > 0 else None
