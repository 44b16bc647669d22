"""WhatsApp and SMS through Twilio.

Inbound: form-encoded webhooks signed with ``X-Twilio-Signature`` (checked with the ``twilio``
library's :class:`~twilio.request_validator.RequestValidator`, which compares in constant
time), routed by the number called (``To``). Outbound: :class:`twilio.rest.Client` with the
library's aiohttp transport; ``api_base_url`` points it at a fake API in tests. A 429 or 503
answer's ``Retry-After`` reaches the :class:`SendResult` through that transport (the library's
exception does not carry the response's headers).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client

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
    Template,
    constant_time_equal,
    header,
    numbered_text,
    retry_after_seconds,
)
from bot.channels.media import Media, MediaError, download, same_origin
from bot.errors import ConfigError, PayloadError, SignatureError

__all__ = ["PERMANENT_ERRORS", "TWILIO_API", "Form", "TwilioAccount", "TwilioAdapter"]

_TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

_log = logging.getLogger(__name__)
_TRANSPORT_LOG = logging.getLogger(f"{__name__}.http")
# the twilio client logs a dozen INFO lines per request (URLs carry residents' numbers)
_TRANSPORT_LOG.setLevel(logging.WARNING)

PERMANENT_ERRORS = {
    63016: "WhatsApp 24-hour window closed: only a template may be sent",
    21610: "the resident has opted out (STOP) of messages from this number",
    63024: "invalid WhatsApp recipient",
    21211: "invalid 'To' number",
    21614: "'To' number cannot receive SMS",
    63003: "WhatsApp channel could not find the recipient",
}
"""Twilio error codes that no retry can fix."""

_WHATSAPP = "whatsapp:"
TWILIO_API = "https://api.twilio.com"
"""Where Twilio serves media URLs (``MediaUrlN``), fetched with the account's credentials."""

# The headers of the answers to the send running in this context (lower-case names). One
# transport serves every concurrent send of an account, so an attribute on it would mix them up.
_ANSWER_HEADERS: ContextVar[dict[str, str] | None] = ContextVar(
    "twilio_answer_headers", default=None
)


class _HeaderKeepingTransport(AsyncTwilioHttpClient):
    """The library's aiohttp transport, handing each answer's headers to the send that asked."""

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Make the request (see the library); record the answer's headers for the caller."""
        response = await super().request(
            method, url, params, data, headers, auth, timeout, allow_redirects
        )
        kept = _ANSWER_HEADERS.get()
        if kept is not None and response.headers is not None:
            kept.update((name.lower(), value) for name, value in response.headers.items())
        return response


_STATUSES: dict[str, DeliveryStatus] = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "undelivered": "failed",
    "canceled": "failed",
}
"""Twilio's message statuses (status callbacks) as delivery states."""


def _is_status(form: Mapping[str, str]) -> bool:
    """A delivery status callback, not a resident's message (whose status is ``received``)."""
    return (form.get("MessageStatus") or form.get("SmsStatus") or "").lower() in _STATUSES


def _required(form: Mapping[str, str], *names: str) -> str:
    """The first non-empty of ``names`` (a bare ``whatsapp:`` counts as empty)."""
    for name in names:
        value = checks.clean(form.get(name, "")).strip()
        if _bare(value) and len(value) <= checks.MAX_ID and value.isprintable():
            return value
    raise PayloadError("whatsapp", f"{names[0]} is missing or empty")


def _fields(channel: str, raw_body: bytes) -> Mapping[str, str]:
    """The fields of a form body, or of a JSON object body (``bodySHA256`` webhooks)."""
    if raw_body.lstrip().startswith(b"{"):
        data = checks.mapping(channel, checks.load_json(channel, raw_body), "body")
        return {str(name): str(value) for name, value in data.items() if value is not None}
    return _form(channel, raw_body)


@dataclass(frozen=True)
class TwilioAccount:
    """One of the council's Twilio numbers.

    Attributes:
        number: E.164 number (``+441234567890``), without any ``whatsapp:`` prefix.
        account_sid: The Twilio account (or subaccount) that owns it.
        auth_token: That account's auth token (signs webhooks, authenticates sends).
        templates: Our template names mapped to approved ``ContentSid`` values.
        webhook_keys: Webhooks Rules' shared keys by name (HMAC-SHA256 signatures).
    """

    number: str
    account_sid: str
    auth_token: str = field(repr=False)
    templates: Mapping[str, str] = field(default_factory=dict)
    webhook_keys: Mapping[str, str] = field(default_factory=dict, repr=False)


def _bare(address: str) -> str:
    return address.removeprefix(_WHATSAPP)


class Form(dict[str, str]):
    """A form's fields: the last value of each name, and :meth:`getall` for repeats.

    Twilio's signature covers every value of a repeated name; ``RequestValidator`` reads
    them through ``getall``, as it does with Flask's ``MultiDict``.
    """

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        super().__init__(pairs)
        self._all: dict[str, list[str]] = {}
        for name, value in pairs:
            self._all.setdefault(name, []).append(value)

    def getall(self, name: str) -> list[str]:
        """Every value given for ``name``, in order."""
        return list(self._all[name])


def _form(channel: str, raw_body: bytes) -> Form:
    try:
        text = raw_body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(channel, "body is not form-encoded") from exc
    return Form(pairs)


def _signature(secret: str, url: str, params: Form, algorithm: str) -> str:
    """Twilio's signature (URL, then each name's sorted values) with the given hash."""
    signed = url + "".join(
        name + value for name in sorted(params) for value in sorted(set(params.getall(name)))
    )
    digest = hmac.new(secret.encode(), signed.encode(), algorithm).digest()
    return base64.b64encode(digest).decode()


class TwilioAdapter(ChannelAdapter):
    """WhatsApp and SMS through Twilio, for any number of the council's numbers.

    Args:
        accounts: The numbers served.
        trust_proxy: Rebuild the public URL from ``X-Forwarded-Proto``/``X-Forwarded-Host``
            (only behind a proxy that sets them; otherwise a caller could choose the URL).
        api_base_url: Twilio API base URL (tests: a local fake).
        timeout: Seconds before a send counts as timed out (and is retried).
        clock: Time source for ``received_at`` (Twilio's webhooks carry no timestamp).
    """

    channel = "whatsapp"
    channels = ("whatsapp", "sms")
    accepts_get = True

    def __init__(
        self,
        accounts: Sequence[TwilioAccount],
        *,
        trust_proxy: bool = False,
        api_base_url: str | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._accounts = {account.number: account for account in accounts}
        self.trust_proxy = trust_proxy
        self.api_base_url = api_base_url
        self.timeout = timeout
        self.clock = clock
        self._clients: dict[str, tuple[Any, _HeaderKeepingTransport]] = {}

    @classmethod
    def from_config(cls, section: Section, **overrides: Any) -> TwilioAdapter:
        """Build from a ``credentials.yml`` section (see ``credentials.yml``).

        Raises:
            ConfigError: A key is unknown or a value is wrong.
            MissingSecretError: A referenced environment variable is unset.
        """
        accounts = []
        for item in section.accounts():
            item.only({"number", "account_sid", "auth_token", "templates", "webhook_keys"})
            number = _bare(item.text("number"))
            if not number.startswith("+"):
                raise ConfigError(item.path, item.where("number"), "must be E.164 (+44...)")
            accounts.append(
                TwilioAccount(
                    number,
                    item.text("account_sid"),
                    item.secret("auth_token"),
                    item.strings("templates"),
                    item.strings("webhook_keys"),
                )
            )
        options: dict[str, Any] = {
            "trust_proxy": section.flag("trust_proxy", False),
            "api_base_url": section.data.get("api_base_url") or None,
        }
        options.update(overrides)
        return cls(accounts, **options)

    def accounts(self) -> Sequence[str]:
        """The numbers served."""
        return list(self._accounts)

    def template_for(self, account: str) -> Template | None:
        """The ``council_reply_waiting`` template, when the number has it configured."""
        found = self._accounts.get(account)
        if found and "council_reply_waiting" in found.templates:
            return Template("council_reply_waiting")
        return None

    def acknowledgement(self) -> Challenge:
        """An empty TwiML response: no automatic reply (ours go through the outbox)."""
        return Challenge(200, _TWIML_EMPTY, "text/xml")

    def public_url(self, headers: Mapping[str, str], url: str) -> str:
        """The URL Twilio called: forwarded scheme and host are used only when trusted."""
        if not self.trust_proxy:
            return url
        parts = urlsplit(url)
        scheme = header(headers, "X-Forwarded-Proto").split(",")[0].strip() or parts.scheme
        host = header(headers, "X-Forwarded-Host").split(",")[0].strip() or parts.netloc
        return urlunsplit(parts._replace(scheme=scheme, netloc=host))

    def verify(self, headers: Mapping[str, str], raw_body: bytes, url: str) -> None:
        """Check ``X-Twilio-Signature`` with the auth token of the account concerned.

        The account is the number called (``To``), or for a delivery status callback the
        number that sent (``From``). Form bodies sign the URL and every value of every field
        (a repeated name once per value); a number whose webhook is set to GET signs the URL
        with its query; a JSON body signs the URL, whose ``bodySHA256`` is the body's hash.
        A matching Webhooks Rule (``X-Twilio-Webhooks-Signature-Settings:
        key=...,algorithm=HMAC_SHA256``) signs with the account's ``webhook_keys`` secret of
        that name instead of the auth token.

        Raises:
            SignatureError: No signature, an unknown number, or a wrong signature.
        """
        signature = header(headers, "X-Twilio-Signature")
        if not signature:
            raise SignatureError(self.channel, "no X-Twilio-Signature header")
        public = self.public_url(headers, url)
        query = _form(self.channel, urlsplit(public).query.encode())
        json_body = "bodySHA256" in query
        try:
            params = Form([]) if json_body or not raw_body else _form(self.channel, raw_body)
            found = _fields(self.channel, raw_body) if json_body else (params or query)
        except PayloadError as exc:
            raise SignatureError(self.channel, "body is not form-encoded") from exc
        candidates = self._accounts_for(found)
        if not candidates:
            # without the number's auth token nothing can be verified
            raise SignatureError(self.channel, "unknown account (the number called)")
        if json_body and not constant_time_equal(
            hashlib.sha256(raw_body).hexdigest(), query["bodySHA256"]
        ):
            raise SignatureError(self.channel, "bodySHA256 does not match the body")
        settings = header(headers, "X-Twilio-Webhooks-Signature-Settings")
        matched = [
            account
            for account in candidates
            if self._signed_by(account, settings, public, params, signature)
        ]
        if not matched:
            raise SignatureError(self.channel, "X-Twilio-Signature does not match")
        if "AccountSid" in found and not constant_time_equal(
            matched[0].account_sid, found["AccountSid"]
        ):
            raise SignatureError(self.channel, "AccountSid does not own the number called")

    def _accounts_for(self, fields: Mapping[str, str]) -> list[TwilioAccount]:
        """The accounts whose token may have signed the request.

        The number called; for a status callback, the number that sent; for a body that
        names neither (a JSON event), any of them.
        """
        if "To" not in fields and "From" not in fields:
            return list(self._accounts.values())
        called = self._accounts.get(_bare(fields.get("To", "")))
        if called is None and _is_status(fields):
            called = self._accounts.get(_bare(fields.get("From", "")))
        return [called] if called else []

    def _signed_by(
        self, account: TwilioAccount, settings: str, url: str, params: Form, signature: str
    ) -> bool:
        if not settings:
            return bool(RequestValidator(account.auth_token).validate(url, params, signature))
        options = dict(part.strip().partition("=")[::2] for part in settings.split(","))
        algorithm = {"HMAC_SHA256": "sha256", "HMAC_SHA1": "sha1"}.get(options.get("algorithm", ""))
        secret = account.webhook_keys.get(options.get("key", ""))
        if algorithm is None or not secret:
            return False
        parts = urlsplit(url)
        # like RequestValidator: Twilio may have signed the URL with or without its port
        candidates = {url, urlunsplit(parts._replace(netloc=parts.hostname or ""))}
        return any(
            constant_time_equal(_signature(secret, candidate, params, algorithm), signature)
            for candidate in candidates
        )

    def read(self, headers: Mapping[str, str], raw_body: bytes) -> Parsed:
        """One message per webhook (text, media, location pins), or one delivery receipt.

        A delivery status callback (``MessageStatus`` queued, sent, delivered, read, failed
        or undelivered; its ``From`` is our number, its ``To`` the resident) becomes a
        receipt for :mod:`bot.channels.delivery`.

        Raises:
            PayloadError: Not a form (or JSON) body.
        """
        form = _fields(self.channel, raw_body)
        parsed = Parsed()
        try:
            if _is_status(form):
                parsed.receipts.append(self._receipt(form))
            else:
                parsed.messages.append(self._message(form))
        except PayloadError as exc:
            parsed.rejected.append(Rejected(exc.channel, exc.reason))
        return parsed

    def _receipt(self, form: Mapping[str, str]) -> Receipt:
        sender, to = _required(form, "From"), _required(form, "To")
        message_id = _required(form, "MessageSid", "SmsSid")
        channel = "whatsapp" if sender.startswith(_WHATSAPP) else "sms"
        reported = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
        status = _STATUSES[reported]
        code = form.get("ErrorCode", "")
        error = ""
        if status == "failed":
            known = PERMANENT_ERRORS.get(int(code)) if code.isdigit() else None
            error = known or f"{reported} (Twilio error {code or 'unknown'})"
        return Receipt(
            channel,
            _bare(sender),
            _bare(to),
            status,
            self.clock(),
            (message_id,),
            None,
            error,
            code,
        )

    def _message(self, form: Mapping[str, str]) -> InboundMessage:
        sender, to = _required(form, "From"), _required(form, "To")
        message_id = _required(form, "MessageSid", "SmsMessageSid")
        channel = "whatsapp" if sender.startswith(_WHATSAPP) else "sms"
        count = form.get("NumMedia") or "0"
        if not count.isdigit():
            raise PayloadError(channel, "NumMedia is not a number")
        attachments = []
        for index in range(min(int(count[:3]), 10)):
            url = form.get(f"MediaUrl{index}", "")
            if not url:
                raise PayloadError(channel, f"MediaUrl{index} missing")
            content_type = form.get(f"MediaContentType{index}", "")
            kind = content_type.split("/")[0] if content_type else "file"
            attachments.append(Attachment(kind, checks.clean(url), checks.clean(content_type)))
        location = None
        if form.get("Latitude") or form.get("Longitude"):
            location = Location(
                checks.coordinate(channel, form.get("Latitude"), "Latitude", 90),
                checks.coordinate(channel, form.get("Longitude"), "Longitude", 180),
                checks.clean(form.get("Address") or form.get("Label") or ""),
            )
        return InboundMessage(
            channel=channel,
            account=_bare(to),
            sender=_bare(sender),
            message_id=message_id,
            text=checks.clean(form.get("Body", "")),
            received_at=self.clock(),
            display_name=checks.clean(form.get("ProfileName", "")),
            attachments=tuple(attachments),
            location=location,
            quick_reply_payload=checks.clean(form.get("ButtonPayload") or "") or None,
            raw_ref=message_id,
        )

    async def warm_up(self) -> None:
        """Build every account's client before traffic arrives.

        Measured in ``bench/channels.py``: done on the first send instead, the SDK's lazy
        imports of its REST modules held the event loop for about 30 ms.
        """
        for account in self._accounts.values():
            _ = self._client(account).messages  # loads the modules a send goes through

    def _client(self, account: TwilioAccount) -> Any:
        found = self._clients.get(account.number)
        if found is None:
            transport = _HeaderKeepingTransport(logger=_TRANSPORT_LOG)
            client = Client(account.account_sid, account.auth_token, http_client=transport)
            if self.api_base_url:
                client.api.base_url = self.api_base_url
            found = self._clients[account.number] = (client, transport)
        return found[0]

    async def fetch_media(self, account: str, attachment: Attachment, *, max_bytes: int) -> Media:
        """A ``MediaUrlN`` file, fetched with the number's account SID and auth token.

        The credentials go only to Twilio's API (or ``api_base_url``): a media URL elsewhere is
        refused, and the redirect to Twilio's signed CDN address is followed without them.

        Raises:
            MediaTooLargeError: Over ``max_bytes``.
            MediaError: Unknown number, a URL off Twilio's API, or Twilio's refusal.
        """
        found = self._accounts.get(_bare(account))
        if found is None:
            raise MediaError(self.channel, "unknown account")
        if not same_origin(attachment.url, self.api_base_url or TWILIO_API):
            raise MediaError(self.channel, "media URL is not on Twilio's API")
        auth = aiohttp.BasicAuth(found.account_sid, found.auth_token)
        return await download(self.channel, attachment.url, max_bytes=max_bytes, auth=auth)

    async def send(
        self, account: str, recipient: str, message: OutboundMessage, *, channel: str = ""
    ) -> SendResult:
        """Send from the number ``account``; ``channel`` ``sms`` sends SMS, else WhatsApp."""
        found = self._accounts.get(account)
        if found is None:
            return SendResult("failed", error=f"unknown account {account}")
        prefix = "" if channel == "sms" else _WHATSAPP
        kwargs: dict[str, Any] = {"from_": prefix + found.number, "to": prefix + recipient}
        if message.template is not None:
            content_sid = found.templates.get(message.template.name)
            if not content_sid:
                return SendResult("failed", error=f"no template {message.template.name!r}")
            kwargs["content_sid"] = content_sid
            if message.template.variables:
                kwargs["content_variables"] = json.dumps(dict(message.template.variables))
        else:
            kwargs["body"] = numbered_text(message)
        answer_headers: dict[str, str] = {}
        kept = _ANSWER_HEADERS.set(answer_headers)
        try:
            # the library's async transport passes timeout=None to aiohttp whatever it was
            # given, so enforce ours here: a hung provider must become a retry, not a stuck worker
            async with asyncio.timeout(self.timeout):
                sent = await self._client(found).messages.create_async(**kwargs)
        except TwilioRestException as exc:
            return _classify(exc, answer_headers)
        except (TimeoutError, aiohttp.ClientError) as exc:
            return SendResult("retry", error=f"network: {type(exc).__name__}")
        finally:
            _ANSWER_HEADERS.reset(kept)
        return SendResult("sent", provider_id=str(sent.sid))

    async def aclose(self) -> None:
        """Close the HTTP sessions of every client."""
        clients, self._clients = self._clients, {}
        await asyncio.gather(*(transport.close() for _, transport in clients.values()))


def _classify(exc: TwilioRestException, headers: Mapping[str, str]) -> SendResult:
    code = int(exc.code) if isinstance(exc.code, int) else 0
    if code in PERMANENT_ERRORS:
        return SendResult("failed", error=PERMANENT_ERRORS[code], code=str(code))
    if exc.status == 429 or exc.status >= 500:
        return SendResult(
            "retry",
            error=f"HTTP {exc.status}",
            code=str(code or ""),
            retry_after=retry_after_seconds(headers.get("retry-after")),
        )
    return SendResult("failed", error=f"HTTP {exc.status}", code=str(code or ""))
