from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlencode

import pytest
from twilio.request_validator import RequestValidator

from bot.channels.base import Button, OutboundMessage, Template
from bot.channels.twilio import Form, TwilioAccount, TwilioAdapter
from bot.errors import PayloadError, SignatureError
from bot.testing.channels import webhook_body
from bot.testing.providers import Answer, FakeProvider

URL = "https://council.example.gov.uk/webhooks/whatsapp/webhook"
TOKEN_1 = "0123456789abcdef0123456789abcdef"
TOKEN_2 = "fedcba9876543210fedcba9876543210"
ACCOUNTS = [
    TwilioAccount(
        "+441234567890",
        "AC00000000000000000000000000000001",
        TOKEN_1,
        {"council_reply_waiting": "HX0000000000000000000000000000000a"},
    ),
    TwilioAccount("+441234567891", "AC00000000000000000000000000000002", TOKEN_2),
]


def sign(body: bytes, token: str = TOKEN_1, url: str = URL) -> dict[str, str]:
    params = dict(parse_qsl(body.decode(), keep_blank_values=True))
    signature = RequestValidator(token).compute_signature(url, params)
    return {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def adapter(provider: FakeProvider) -> AsyncIterator[TwilioAdapter]:
    made = TwilioAdapter(ACCOUNTS, api_base_url=provider.url, timeout=1.0, clock=lambda: 1000.0)
    yield made
    await made.aclose()


def test_good_signature_passes_and_parses(adapter: TwilioAdapter) -> None:
    body = webhook_body("twilio", "whatsapp_text.txt")
    adapter.verify(sign(body), body, URL)
    [message] = adapter.parse({}, body)
    assert message.channel == "whatsapp"
    assert message.account == "+441234567890"
    assert message.sender == "+447700900123"
    assert message.message_id == "SM1f0e8ae6ade43cb3c0ce4525424e404f"
    assert message.text == "When is my bin day?"
    assert message.display_name == "Alex Jones"
    assert message.received_at == 1000.0


def test_sms_on_a_second_account(adapter: TwilioAdapter) -> None:
    body = webhook_body("twilio", "sms_text.txt")
    adapter.verify(sign(body, TOKEN_2), body, URL)
    [message] = adapter.parse({}, body)
    assert (message.channel, message.account, message.sender) == (
        "sms",
        "+441234567891",
        "+447700900456",
    )


def test_signature_of_another_account_fails(adapter: TwilioAdapter) -> None:
    body = webhook_body("twilio", "sms_text.txt")
    with pytest.raises(SignatureError):
        adapter.verify(sign(body, TOKEN_1), body, URL)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body: body.replace(b"bin+day", b"bin+night"),
        lambda body: body + b"&Extra=1",
    ],
)
def test_tampered_body_fails(adapter: TwilioAdapter, tamper: object) -> None:
    body = webhook_body("twilio", "whatsapp_text.txt")
    headers = sign(body)
    with pytest.raises(SignatureError):
        adapter.verify(headers, tamper(body), URL)  # type: ignore[operator]


def test_missing_signature_and_wrong_url_fail(adapter: TwilioAdapter) -> None:
    body = webhook_body("twilio", "whatsapp_text.txt")
    with pytest.raises(SignatureError, match="no X-Twilio-Signature"):
        adapter.verify({}, body, URL)
    with pytest.raises(SignatureError):
        adapter.verify(sign(body), body, "https://evil.example/webhooks/whatsapp/webhook")


def test_unknown_number_is_refused(adapter: TwilioAdapter) -> None:
    body = webhook_body("twilio", "whatsapp_text.txt").replace(
        b"%2B441234567890", b"%2B449999999999"
    )
    with pytest.raises(SignatureError, match="unknown account"):
        adapter.verify(sign(body), body, URL)


def test_account_sid_must_own_the_number(adapter: TwilioAdapter) -> None:
    body = webhook_body("twilio", "whatsapp_text.txt").replace(b"0000000001&", b"0000000002&")
    with pytest.raises(SignatureError, match="AccountSid"):
        adapter.verify(sign(body), body, URL)


def test_proxy_headers_only_when_trusted(adapter: TwilioAdapter) -> None:
    body = webhook_body("twilio", "whatsapp_text.txt")
    internal = "http://10.0.0.5:5005/webhooks/whatsapp/webhook"
    headers = {
        **sign(body),
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "council.example.gov.uk",
    }
    with pytest.raises(SignatureError):
        adapter.verify(headers, body, internal)
    trusting = TwilioAdapter(ACCOUNTS, trust_proxy=True)
    trusting.verify(headers, body, internal)
    assert trusting.public_url(headers, internal) == URL


def test_media_and_location(adapter: TwilioAdapter) -> None:
    [media] = adapter.parse({}, webhook_body("twilio", "whatsapp_media.txt"))
    assert media.attachments[0].kind == "image"
    assert media.attachments[0].content_type == "image/jpeg"
    assert media.attachments[0].url.startswith("https://api.twilio.com/")
    [pin] = adapter.parse({}, webhook_body("twilio", "whatsapp_location.txt"))
    assert pin.location is not None
    assert (pin.location.latitude, pin.location.longitude) == (51.5072, -0.1276)
    assert pin.location.label == "Town Hall, High Street"
    assert pin.text == ""


@pytest.mark.parametrize("body", [b"\xff\xfe\x00garbage", b"not a form at all"])
def test_unreadable_bodies(adapter: TwilioAdapter, body: bytes) -> None:
    with pytest.raises(PayloadError):
        adapter.read({}, body)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"From=whatsapp%3A%2B447700900123&To=whatsapp%3A%2B441234567890", "MessageSid"),
        (
            webhook_body("twilio", "whatsapp_text.txt").replace(b"NumMedia=0", b"NumMedia=two"),
            "NumMedia",
        ),
        (
            webhook_body("twilio", "whatsapp_location.txt").replace(
                b"Latitude=51.5072", b"Latitude=north"
            ),
            "Latitude",
        ),
        (
            webhook_body("twilio", "whatsapp_location.txt").replace(
                b"Latitude=51.5072", b"Latitude=1e400"
            ),
            "Latitude",
        ),
        (  # an empty sender: From=whatsapp:
            webhook_body("twilio", "whatsapp_text.txt").replace(
                b"From=whatsapp%3A%2B447700900123", b"From=whatsapp%3A"
            ),
            "From",
        ),
    ],
)
def test_malformed_fields_are_rejected_with_a_reason(
    adapter: TwilioAdapter, body: bytes, reason: str
) -> None:
    parsed = adapter.read({}, body)
    assert parsed.messages == []
    [rejected] = parsed.rejected
    assert reason in rejected.reason


def test_malformed_body_fails_verification_without_parsing(adapter: TwilioAdapter) -> None:
    with pytest.raises(SignatureError):
        adapter.verify({"X-Twilio-Signature": "x"}, b"\xff\xfe", URL)


async def test_send_whatsapp_through_the_real_client(
    adapter: TwilioAdapter, provider: FakeProvider
) -> None:
    result = await adapter.send(
        "+441234567890",
        "+447700900123",
        OutboundMessage("Which bin?", (Button("Black"), Button("Green"))),
    )
    assert result.ok and result.provider_id.startswith("SM")
    [request] = provider.requests
    assert request.path == "/2010-04-01/Accounts/AC00000000000000000000000000000001/Messages.json"
    form = request.form()
    assert form["From"] == "whatsapp:+441234567890"
    assert form["To"] == "whatsapp:+447700900123"
    assert "1. Black" in form["Body"] and "2. Green" in form["Body"]
    assert request.headers["Authorization"].startswith("Basic ")


async def test_send_sms_and_template(adapter: TwilioAdapter, provider: FakeProvider) -> None:
    assert (
        await adapter.send("+441234567891", "+447700900456", OutboundMessage("hi"), channel="sms")
    ).ok
    assert provider.requests[0].form()["From"] == "+441234567891"
    template = OutboundMessage("", template=Template("council_reply_waiting", {"1": "Alex"}))
    assert (await adapter.send("+441234567890", "+447700900123", template)).ok
    form = provider.requests[1].form()
    assert form["ContentSid"] == "HX0000000000000000000000000000000a"
    assert "Body" not in form
    missing = await adapter.send("+441234567891", "+447700900456", template, channel="sms")
    assert missing.outcome == "failed"


async def test_send_failures_are_classified(adapter: TwilioAdapter, provider: FakeProvider) -> None:
    provider.script(
        Answer(500, {"code": 20500, "message": "Internal Server Error", "status": 500}),
        Answer(429, {"code": 20429, "message": "Too Many Requests", "status": 429}),
        Answer(400, {"code": 63016, "message": "Outside the allowed window", "status": 400}),
        Answer(400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient"}),
        Answer(201, {"sid": "SMlate"}, delay=2.0),
    )
    send = lambda: adapter.send("+441234567890", "+447700900123", OutboundMessage("hi"))  # noqa: E731
    assert (await send()).outcome == "retry"
    assert (await send()).outcome == "retry"
    closed = await send()
    assert (closed.outcome, closed.code) == ("failed", "63016")
    blocked = await send()
    assert (blocked.outcome, blocked.code) == ("failed", "21610")
    timed_out = await send()
    assert timed_out.outcome == "retry" and "network" in timed_out.error


async def test_send_to_unknown_account_fails(adapter: TwilioAdapter) -> None:
    assert (
        await adapter.send("+440000000000", "+447700900123", OutboundMessage("x"))
    ).outcome == "failed"


def test_form_encoding_helper_matches_twilio() -> None:
    # our signer must agree with Twilio's own URL encoding of the same parameters
    body = urlencode({"Body": "a b&c", "To": "+441234567890", "From": "+447700900123"}).encode()
    assert dict(parse_qsl(body.decode()))["Body"] == "a b&c"


def status_callback(state: str, sender: str = "whatsapp:+441234567890", **extra: str) -> bytes:
    params = {
        "SmsSid": "SM" + "7" * 32,
        "SmsStatus": state,
        "MessageStatus": state,
        "To": "whatsapp:+447700900123",
        "MessageSid": "SM" + "7" * 32,
        "AccountSid": "AC00000000000000000000000000000001",
        "From": sender,
        "ApiVersion": "2010-04-01",
        **extra,
    }
    return urlencode(params).encode()


def test_status_callback_is_verified_by_the_sending_number(adapter: TwilioAdapter) -> None:
    body = status_callback("undelivered", ErrorCode="30003")
    adapter.verify(sign(body), body, URL)  # To is the resident: the account is From
    parsed = adapter.read({}, body)
    assert parsed.messages == []
    [receipt] = parsed.receipts
    assert (receipt.status, receipt.code, receipt.provider_ids) == (
        "failed",
        "30003",
        ("SM" + "7" * 32,),
    )
    assert receipt.conversation_id == "whatsapp:+441234567890:+447700900123"
    stranger = status_callback("delivered", sender="whatsapp:+449999999999")
    with pytest.raises(SignatureError, match="unknown account"):
        adapter.verify(sign(stranger), stranger, URL)


def test_repeated_parameters_are_all_signed(adapter: TwilioAdapter) -> None:
    body = webhook_body("twilio", "whatsapp_text.txt") + b"&Extra=a&Extra=b"
    form = Form(parse_qsl(body.decode(), keep_blank_values=True))
    good = RequestValidator(TOKEN_1).compute_signature(URL, form)
    adapter.verify({"X-Twilio-Signature": good}, body, URL)
    only_last = RequestValidator(TOKEN_1).compute_signature(URL, dict(form))
    with pytest.raises(SignatureError):
        adapter.verify({"X-Twilio-Signature": only_last}, body, URL)


def test_get_webhook_signs_the_query(adapter: TwilioAdapter) -> None:
    query = webhook_body("twilio", "whatsapp_text.txt").decode()
    url = f"{URL}?{query}"
    signature = RequestValidator(TOKEN_1).compute_signature(url, {})
    adapter.verify({"X-Twilio-Signature": signature}, b"", url)
    with pytest.raises(SignatureError):
        adapter.verify({"X-Twilio-Signature": signature}, b"", url.replace("bin", "tin"))


def test_webhooks_rule_needs_a_known_key(adapter: TwilioAdapter) -> None:
    body = webhook_body("twilio", "whatsapp_text.txt")
    headers = {
        **sign(body),
        "X-Twilio-Webhooks-Signature-Settings": "key=unknown,algorithm=HMAC_SHA256",
    }
    with pytest.raises(SignatureError):
        adapter.verify(headers, body, URL)


async def test_rate_limit_carries_retry_after(
    adapter: TwilioAdapter, provider: FakeProvider
) -> None:
    # Twilio answers 429 with error 20429 and a Retry-After in seconds
    # (twilio.com/docs/api/errors/20429); TwilioRestException carries no headers, so the
    # adapter's transport has to keep them.
    provider.script(
        Answer(
            429,
            {"code": 20429, "message": "Too Many Requests", "status": 429},
            {"Retry-After": "30"},
        ),
        Answer(503, {"code": 20503, "message": "Service Unavailable"}, {"Retry-After": "7"}),
        Answer(429, {"code": 20429, "message": "Too Many Requests", "status": 429}),
    )
    send = lambda: adapter.send("+441234567890", "+447700900123", OutboundMessage("hi"))  # noqa: E731
    limited = await send()
    assert (limited.outcome, limited.code, limited.retry_after) == ("retry", "20429", 30.0)
    unavailable = await send()
    assert (unavailable.outcome, unavailable.retry_after) == ("retry", 7.0)
    without_header = await send()
    assert (without_header.outcome, without_header.retry_after) == ("retry", None)


async def test_concurrent_sends_keep_their_own_retry_after(
    adapter: TwilioAdapter, provider: FakeProvider
) -> None:
    # one client (one transport) per account: a header from another send must not leak in
    provider.script(
        Answer(429, {"code": 20429, "message": "Too Many Requests"}, {"Retry-After": "30"}),
        Answer(201, {"sid": "SMok"}, delay=0.2),
    )
    results = await asyncio.gather(
        adapter.send("+441234567890", "+447700900123", OutboundMessage("a")),
        adapter.send("+441234567890", "+447700900124", OutboundMessage("b")),
    )
    # whichever arrived first was refused; the other finished last and saw no header
    assert sorted((r.outcome, r.retry_after) for r in results) == [
        ("retry", 30.0),
        ("sent", None),
    ]
