"""WhatsApp and SMS through Twilio.

Inbound: form-encoded webhooks signed with ``X-Twilio-Signature`` (checked with the ``twilio``
library's :class:`~twilio.request_validator.RequestValidator`, which compares in constant
time), routed by the number called (``To``). Outbound: :class:`twilio.rest.Client` with the
library's aiohttp transport; ``api_base_url`` points it at a fake API in tests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bot.channels.accounts import Section
from bot.channels.base import (
    Attachment,
    ChannelAdapter,
    InboundMessage,
    Location,
    OutboundMessage,
    SendResult,
    Template,
    constant_time_equal,
    header,
    numbered_text,
)
from bot.errors import ConfigError, PayloadError, SignatureError

__all__ = ["PERMANENT_ERRORS", "TwilioAccount", "TwilioAdapter"]

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


@dataclass(frozen=True)
class TwilioAccount:
    """One of the council's Twilio numbers.

    Attributes:
        number: E.164 number (``+441234567890``), without any ``whatsapp:`` prefix.
        account_sid: The Twilio account (or subaccount) that owns it.
        auth_token: That account's auth token (signs webhooks, authenticates sends).
        templates: Our template names mapped to approved ``ContentSid`` values.
    """

    number: str
    account_sid: str
    auth_token: str = field(repr=False)
    templates: Mapping[str, str] = field(default_factory=dict)


def _bare(address: str) -> str:
    return address.removeprefix(_WHATSAPP)


def _form(channel: str, raw_body: bytes) -> dict[str, str]:
    try:
        text = raw_body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(channel, "body is not form-encoded") from exc
    return dict(pairs)


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
        self._clients: dict[str, tuple[Any, AsyncTwilioHttpClient]] = {}

    @classmethod
    def from_config(cls, section: Section, **overrides: Any) -> TwilioAdapter:
        """Build from a ``credentials.yml`` section (see ``credentials.yml``).

        Raises:
            ConfigError: A key is unknown or a value is wrong.
            MissingSecretError: A referenced environment variable is unset.
        """
        accounts = []
        for item in section.accounts():
            item.only({"number", "account_sid", "auth_token", "templates"})
            number = _bare(item.text("number"))
            if not number.startswith("+"):
                raise ConfigError(item.path, item.where("number"), "must be E.164 (+44...)")
            accounts.append(
                TwilioAccount(
                    number,
                    item.text("account_sid"),
                    item.secret("auth_token"),
                    item.strings("templates"),
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

    def public_url(self, headers: Mapping[str, str], url: str) -> str:
        """The URL Twilio called: forwarded scheme and host are used only when trusted."""
        if not self.trust_proxy:
            return url
        parts = urlsplit(url)
        scheme = header(headers, "X-Forwarded-Proto").split(",")[0].strip() or parts.scheme
        host = header(headers, "X-Forwarded-Host").split(",")[0].strip() or parts.netloc
        return urlunsplit(parts._replace(scheme=scheme, netloc=host))

    def verify(self, headers: Mapping[str, str], raw_body: bytes, url: str) -> None:
        """Check ``X-Twilio-Signature`` with the auth token of the number called.

        Raises:
            SignatureError: No signature, an unknown number, or a wrong signature.
        """
        signature = header(headers, "X-Twilio-Signature")
        if not signature:
            raise SignatureError(self.channel, "no X-Twilio-Signature header")
        try:
            params = _form(self.channel, raw_body)
        except PayloadError as exc:
            raise SignatureError(self.channel, "body is not form-encoded") from exc
        account = self._accounts.get(_bare(params.get("To", "")))
        if account is None:
            # without the number's auth token nothing can be verified
            raise SignatureError(self.channel, "unknown account (the number called)")
        if not RequestValidator(account.auth_token).validate(
            self.public_url(headers, url), params, signature
        ):
            raise SignatureError(self.channel, "X-Twilio-Signature does not match")
        if "AccountSid" in params and not constant_time_equal(
            account.account_sid, params["AccountSid"]
        ):
            raise SignatureError(self.channel, "AccountSid does not own the number called")

    def parse(self, headers: Mapping[str, str], raw_body: bytes) -> list[InboundMessage]:
        """One message per webhook: text, media and location pins.

        Raises:
            PayloadError: Missing fields or malformed numbers.
        """
        form = _form(self.channel, raw_body)
        sender, to = form.get("From", ""), form.get("To", "")
        message_id = form.get("MessageSid") or form.get("SmsMessageSid") or ""
        if not sender or not to or not message_id:
            raise PayloadError(self.channel, "From, To and MessageSid are required")
        channel = "whatsapp" if sender.startswith(_WHATSAPP) else "sms"
        try:
            media_count = int(form.get("NumMedia") or 0)
        except ValueError as exc:
            raise PayloadError(channel, "NumMedia is not a number") from exc
        attachments = []
        for index in range(max(0, min(media_count, 10))):
            url = form.get(f"MediaUrl{index}", "")
            if not url:
                raise PayloadError(channel, f"MediaUrl{index} missing")
            content_type = form.get(f"MediaContentType{index}", "")
            kind = content_type.split("/")[0] if content_type else "file"
            attachments.append(Attachment(kind, url, content_type))
        location = None
        if form.get("Latitude") or form.get("Longitude"):
            try:
                location = Location(
                    float(form["Latitude"]),
                    float(form["Longitude"]),
                    form.get("Address") or form.get("Label") or "",
                )
            except (KeyError, ValueError) as exc:
                raise PayloadError(channel, "Latitude/Longitude are not numbers") from exc
        return [
            InboundMessage(
                channel=channel,
                account=_bare(to),
                sender=_bare(sender),
                message_id=message_id,
                text=form.get("Body", ""),
                received_at=self.clock(),
                display_name=form.get("ProfileName", ""),
                attachments=tuple(attachments),
                location=location,
                quick_reply_payload=form.get("ButtonPayload") or None,
                raw_ref=message_id,
            )
        ]

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
            transport = AsyncTwilioHttpClient(logger=_TRANSPORT_LOG)
            client = Client(account.account_sid, account.auth_token, http_client=transport)
            if self.api_base_url:
                client.api.base_url = self.api_base_url
            found = self._clients[account.number] = (client, transport)
        return found[0]

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
        try:
            # the library's async transport passes timeout=None to aiohttp whatever it was
            # given, so enforce ours here: a hung provider must become a retry, not a stuck worker
            async with asyncio.timeout(self.timeout):
                sent = await self._client(found).messages.create_async(**kwargs)
        except TwilioRestException as exc:
            return _classify(exc)
        except (TimeoutError, aiohttp.ClientError) as exc:
            return SendResult("retry", error=f"network: {type(exc).__name__}")
        return SendResult("sent", provider_id=str(sent.sid))

    async def aclose(self) -> None:
        """Close the HTTP sessions of every client."""
        clients, self._clients = self._clients, {}
        await asyncio.gather(*(transport.close() for _, transport in clients.values()))


def _classify(exc: TwilioRestException) -> SendResult:
    code = int(exc.code) if isinstance(exc.code, int) else 0
    if code in PERMANENT_ERRORS:
        return SendResult("failed", error=PERMANENT_ERRORS[code], code=str(code))
    if exc.status == 429 or exc.status >= 500:
        return SendResult("retry", error=f"HTTP {exc.status}", code=str(code or ""))
    return SendResult("failed", error=f"HTTP {exc.status}", code=str(code or ""))
