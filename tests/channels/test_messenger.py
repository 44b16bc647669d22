from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator

import pytest

from bot.channels.base import Button, OutboundMessage
from bot.channels.messenger import MessengerAdapter, MessengerPage
from bot.errors import PayloadError, SignatureError
from bot.testing.channels import webhook_body
from bot.testing.providers import Answer, FakeProvider

SECRET = "app-secret-for-tests"
PAGES = [MessengerPage("104857600000001", "TOKEN-1"), MessengerPage("104857600000002", "TOKEN-2")]


def sign(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}"}


@pytest.fixture
async def adapter(provider: FakeProvider) -> AsyncIterator[MessengerAdapter]:
    made = MessengerAdapter(
        PAGES, app_secret=SECRET, verify_token="verify-me", api_base_url=provider.url, timeout=1.0
    )
    yield made
    await made.aclose()


def test_subscription_challenge(adapter: MessengerAdapter) -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": "verify-me",
        "hub.challenge": "1158201444",
    }
    assert adapter.subscription_challenge(query) == "1158201444"
    assert adapter.subscription_challenge({**query, "hub.verify_token": "nope"}) is None
    assert adapter.subscription_challenge({**query, "hub.mode": "unsubscribe"}) is None


def test_signature_on_the_raw_body(adapter: MessengerAdapter) -> None:
    body = webhook_body("messenger", "text.json")
    adapter.verify(sign(body), body, "")
    reserialised = json.dumps(json.loads(body)).encode()  # same JSON, different bytes
    with pytest.raises(SignatureError):
        adapter.verify(sign(body), reserialised, "")
    with pytest.raises(SignatureError):
        adapter.verify(sign(body, "other-secret"), body, "")
    with pytest.raises(SignatureError):
        adapter.verify({}, body, "")
    with pytest.raises(SignatureError):  # the superseded SHA-1 header is not enough
        adapter.verify({"X-Hub-Signature": "sha1=abc"}, body, "")


def test_text_message(adapter: MessengerAdapter) -> None:
    [message] = adapter.parse({}, webhook_body("messenger", "text.json"))
    assert message.conversation_id == "messenger:104857600000001:6789012345678901"
    assert message.message_id == "m_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
    assert message.text == "When is my bin day?"
    assert message.received_at == pytest.approx(1732352399.876)


def test_batch_echoes_receipts_and_unknown_pages_dropped(adapter: MessengerAdapter) -> None:
    messages = adapter.parse({}, webhook_body("messenger", "batch.json"))
    assert [m.message_id for m in messages] == ["m_quick_0001", "m_attach_0001", "m_page2_0001"]
    quick, attachment, page2 = messages
    assert quick.quick_reply_payload == "/bin_day"
    assert attachment.attachments[0].kind == "image"
    assert attachment.attachments[0].url.endswith("photo.jpg")
    assert page2.account == "104857600000002"


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"object":"instagram","entry":[]}',
        b'{"object":"page","entry":{}}',
        b"[]",
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_unreadable_payloads(adapter: MessengerAdapter, body: bytes) -> None:
    with pytest.raises(PayloadError):
        adapter.read({}, body)


def test_a_malformed_event_never_costs_its_siblings(adapter: MessengerAdapter) -> None:
    good = {
        "sender": {"id": "6789"},
        "recipient": {"id": "104857600000001"},
        "timestamp": 1732352399000,
        "message": {"mid": "m_good", "text": "hello"},
    }
    bad = [
        {**good, "message": {}},  # no mid
        {**good, "timestamp": 1e308},
        {**good, "timestamp": "soon"},
        {**good, "sender": {"id": ""}},
        {**good, "message": {"mid": "m_x", "text": ["a", "list"]}},
        {
            **good,
            "message": {
                "mid": "m_y",
                "attachments": [
                    {"type": "location", "payload": {"coordinates": {"lat": 91, "long": 0}}}
                ],
            },
        },
        "not an event",
    ]
    body = json.dumps(
        {
            "object": "page",
            "entry": [
                {"id": "104857600000001", "messaging": [*bad, good]},
                {"id": ["not", "an", "id"], "messaging": [good]},
            ],
        }
    ).encode()
    parsed = adapter.read({}, body)
    assert [m.message_id for m in parsed.messages] == ["m_good"]
    assert len(parsed.rejected) == len(bad) + 1
    assert any("timestamp" in r.reason for r in parsed.rejected)


def test_lone_surrogates_are_replaced(adapter: MessengerAdapter) -> None:
    body = (
        b'{"object":"page","entry":[{"id":"104857600000001","messaging":[{"sender":'
        b'{"id":"6789"},"timestamp":1732352399000,"message":{"mid":"m_s",'
        b'"text":"bin \\ud800 day \\ud83d\\ude00"}}]}]}'
    )
    [message] = adapter.parse({}, body)
    assert message.text == "bin \ufffd day \U0001f600"
    message.text.encode("utf-8")  # storable


async def test_send_with_quick_replies_and_tag(
    adapter: MessengerAdapter, provider: FakeProvider
) -> None:
    message = OutboundMessage("Which service?", (Button("Bins", "/bin_day"), Button("Tax")))
    result = await adapter.send("104857600000002", "5555000011112222", message)
    assert result.ok and result.provider_id.startswith("m_sent_")
    [request] = provider.requests
    assert request.path == "/v19.0/me/messages"
    assert request.query == {"access_token": "TOKEN-2"}
    body = request.json()
    assert body["messaging_type"] == "RESPONSE"
    assert body["recipient"] == {"id": "5555000011112222"}
    assert [q["payload"] for q in body["message"]["quick_replies"]] == ["/bin_day", "Tax"]
    tagged = await adapter.send(
        "104857600000001", "1", OutboundMessage("Agent here", tag="HUMAN_AGENT")
    )
    assert tagged.ok
    assert provider.requests[1].json()["messaging_type"] == "MESSAGE_TAG"
    assert provider.requests[1].json()["tag"] == "HUMAN_AGENT"


def test_many_buttons_become_numbered_text(adapter: MessengerAdapter) -> None:
    buttons = tuple(Button(f"Option {n}") for n in range(15))
    body = adapter.request_body("1", OutboundMessage("Pick", buttons))
    assert "quick_replies" not in body["message"]
    assert "15. Option 14" in body["message"]["text"]


async def test_send_failures(adapter: MessengerAdapter, provider: FakeProvider) -> None:
    provider.script(
        Answer(503, {"error": {"message": "unavailable", "code": 2}}, {"Retry-After": "3"}),
        Answer(400, {"error": {"message": "rate", "code": 613}}),
        Answer(400, {"error": {"message": "outside window", "code": 10, "error_subcode": 2018278}}),
        Answer(400, {"error": {"message": "bad param", "code": 100}}),
        Answer(200, {}, delay=2.0),
    )
    send = lambda: adapter.send("104857600000001", "1", OutboundMessage("x"))  # noqa: E731
    first = await send()
    assert (first.outcome, first.retry_after) == ("retry", 3.0)
    assert (await send()).outcome == "retry"
    window = await send()
    assert (window.outcome, window.code) == ("failed", "10/2018278")
    assert (await send()).outcome == "failed"
    assert (await send()).outcome == "retry"  # timed out
    assert (await adapter.send("42", "1", OutboundMessage("x"))).outcome == "failed"


# The rate-limit codes (4 application, 17 user, 32 page, 613 custom) and the
# X-Business-Use-Case-Usage header (JSON: business object id -> usage entries, with
# estimated_time_to_regain_access in minutes) as in Meta's Graph API "Rate Limiting" page
# (developers.facebook.com/docs/graph-api/overview/rate-limiting).
BUC_USAGE = json.dumps(
    {
        "104857600000001": [
            {
                "type": "pages",
                "call_count": 100,
                "total_cputime": 25,
                "total_time": 25,
                "estimated_time_to_regain_access": 19,
            }
        ]
    }
)


async def test_rate_limits_say_when_to_retry(
    adapter: MessengerAdapter, provider: FakeProvider
) -> None:
    provider.script(
        Answer(429, {"error": {"message": "limit", "code": 4}}, {"Retry-After": "120"}),
        Answer(
            400,
            {"error": {"message": "page limit", "code": 32}},
            {"X-Business-Use-Case-Usage": BUC_USAGE},
        ),
        Answer(
            400,
            {"error": {"message": "user limit", "code": 17}},
            {"X-Business-Use-Case-Usage": "not json"},
        ),
        Answer(400, {"error": {"message": "custom", "code": 613}}),
    )
    send = lambda: adapter.send("104857600000001", "1", OutboundMessage("x"))  # noqa: E731
    asked = await send()
    assert (asked.outcome, asked.code, asked.retry_after) == ("retry", "4", 120.0)
    regained = await send()
    assert (regained.outcome, regained.code, regained.retry_after) == ("retry", "32", 19 * 60.0)
    unreadable = await send()
    assert (unreadable.outcome, unreadable.retry_after) == ("retry", None)
    bare = await send()
    assert (bare.outcome, bare.retry_after) == ("retry", None)
