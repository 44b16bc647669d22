from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator

import pytest

from bot.channels.base import Button, OutboundMessage
from bot.channels.twitter import TwitterAccount, TwitterAdapter, crc_response
from bot.errors import PayloadError, SignatureError
from bot.testing.channels import webhook_body
from bot.testing.providers import Answer, FakeProvider

SECRET = "consumer-secret-for-tests"
ACCOUNT = "1422000000000000001"


def sign(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {"x-twitter-webhooks-signature": "sha256=" + base64.b64encode(digest).decode()}


@pytest.fixture
async def adapter(provider: FakeProvider) -> AsyncIterator[TwitterAdapter]:
    made = TwitterAdapter(
        [TwitterAccount(ACCOUNT, "user-token")],
        consumer_secret=SECRET,
        api_base_url=provider.url,
        timeout=1.0,
    )
    yield made
    await made.aclose()


def test_crc_response_matches_the_documented_formula(adapter: TwitterAdapter) -> None:
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), b"challenge123", hashlib.sha256).digest()
    ).decode()
    assert adapter.crc("challenge123") == {"response_token": f"sha256={expected}"}
    assert crc_response(SECRET, "challenge123") == adapter.crc("challenge123")


def test_signature(adapter: TwitterAdapter) -> None:
    body = webhook_body("twitter", "dm.json")
    adapter.verify(sign(body), body, "")
    with pytest.raises(SignatureError):
        adapter.verify(sign(body, "wrong"), body, "")
    with pytest.raises(SignatureError):
        adapter.verify(sign(body), body + b" ", "")
    with pytest.raises(SignatureError):
        adapter.verify({}, body, "")


def test_own_dms_dropped(adapter: TwitterAdapter) -> None:
    [message] = adapter.parse({}, webhook_body("twitter", "dm.json"))
    assert message.conversation_id == f"twitter:{ACCOUNT}:987654321"
    assert message.message_id == "1863000000000000001"
    assert message.display_name == "Sam Resident"
    assert message.received_at == 1732352400.0


def test_other_events_and_unknown_accounts(adapter: TwitterAdapter) -> None:
    assert adapter.parse({}, webhook_body("twitter", "favorite.json")) == []
    other = webhook_body("twitter", "dm.json").replace(
        b'"for_user_id":"1422', b'"for_user_id":"9422'
    )
    assert adapter.parse({}, other) == []


@pytest.mark.parametrize("body", [b"nope", b"[]", b"[" * 5000 + b"]" * 5000])
def test_unreadable(adapter: TwitterAdapter, body: bytes) -> None:
    with pytest.raises(PayloadError):
        adapter.read({}, body)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"type": "message_create", "id": "1"}, "message_create"),
        (
            {
                "type": "message_create",
                "id": "2",
                "created_timestamp": "1732352400000",
                "message_create": {"sender_id": "", "message_data": {"text": "hi"}},
            },
            "sender_id",
        ),
        (
            {
                "type": "message_create",
                "id": "3",
                "created_timestamp": "9" * 19,
                "message_create": {"sender_id": "5", "message_data": {"text": "hi"}},
            },
            "created_timestamp",
        ),
        (
            {
                "type": "message_create",
                "id": "4",
                "created_timestamp": 1e308,
                "message_create": {"sender_id": "5", "message_data": {"text": "hi"}},
            },
            "created_timestamp",
        ),
        (
            {
                "type": "message_create",
                "id": "5",
                "created_timestamp": "1732352400000",
                "message_create": {"sender_id": "5", "message_data": {"text": {"a": 1}}},
            },
            "text",
        ),
    ],
)
def test_malformed_dm_rejected_with_reason(
    adapter: TwitterAdapter, event: dict[str, object], reason: str
) -> None:
    good = json.loads(webhook_body("twitter", "dm.json"))
    good["direct_message_events"].insert(0, event)
    parsed = adapter.read({}, json.dumps(good).encode())
    assert [m.message_id for m in parsed.messages] == ["1863000000000000001"]
    [rejected] = parsed.rejected
    assert reason in rejected.reason


async def test_send(adapter: TwitterAdapter, provider: FakeProvider) -> None:
    result = await adapter.send(ACCOUNT, "987654321", OutboundMessage("Pick", (Button("Bins"),)))
    assert result.ok
    [request] = provider.requests
    assert request.path == "/2/dm_conversations/with/987654321/messages"
    assert request.headers["Authorization"] == "Bearer user-token"
    assert "1. Bins" in request.json()["text"]


async def test_send_failures(adapter: TwitterAdapter, provider: FakeProvider) -> None:
    provider.script(
        Answer(403, {"title": "Forbidden"}),
        Answer(429, {"title": "Too Many Requests"}, {"Retry-After": "5"}),
        Answer(500, {}),
    )
    blocked = await adapter.send(ACCOUNT, "1", OutboundMessage("x"))
    assert (blocked.outcome, blocked.code) == ("failed", "403")
    assert (await adapter.send(ACCOUNT, "1", OutboundMessage("x"))).outcome == "retry"
    assert (await adapter.send(ACCOUNT, "1", OutboundMessage("x"))).outcome == "retry"
    assert (await adapter.send("nobody", "1", OutboundMessage("x"))).outcome == "failed"
