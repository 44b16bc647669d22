"""Instagram direct messages: Meta's webhook (object "instagram"), many accounts, Send API."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator

import pytest

from bot.channels.accounts import Section
from bot.channels.base import OutboundMessage
from bot.channels.instagram import InstagramAccount, InstagramAdapter
from bot.errors import ConfigError, PayloadError, SignatureError
from bot.testing.providers import Answer, FakeProvider

SECRET = "instagram-app-secret"
ACCOUNTS = [
    InstagramAccount("17841400000000001", "IG-TOKEN-1"),
    InstagramAccount("17841400000000002", "IG-TOKEN-2"),
]


def sign(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {
        "X-Hub-Signature-256": "sha256="
        + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    }


def webhook(account: str, *events: dict[str, object]) -> bytes:
    return json.dumps(
        {
            "object": "instagram",
            "entry": [{"id": account, "time": 1732352400500, "messaging": list(events)}],
        }
    ).encode()


def text(sender: str, mid: str, words: str) -> dict[str, object]:
    return {
        "sender": {"id": sender},
        "recipient": {"id": "x"},
        "timestamp": 1732352400000,
        "message": {"mid": mid, "text": words},
    }


@pytest.fixture
async def adapter(provider: FakeProvider) -> AsyncIterator[InstagramAdapter]:
    made = InstagramAdapter(
        ACCOUNTS,
        app_secret=SECRET,
        verify_token="ig-verify",
        api_base_url=provider.url,
        timeout=1.0,
    )
    yield made
    await made.aclose()


def test_signature_and_subscription_check(adapter: InstagramAdapter) -> None:
    body = webhook("17841400000000001", text("1230000000000001", "m1", "hello"))
    adapter.verify(sign(body), body, "")
    with pytest.raises(SignatureError):
        adapter.verify(sign(body, "another-app"), body, "")
    query = {"hub.mode": "subscribe", "hub.verify_token": "ig-verify", "hub.challenge": "77"}
    answer = adapter.challenge(query)
    assert answer is not None and (answer.status, answer.body) == (200, "77")
    refused = adapter.challenge({**query, "hub.verify_token": "wrong"})
    assert refused is not None and refused.status == 403


def test_messages_are_routed_by_account(adapter: InstagramAdapter) -> None:
    [first] = adapter.parse(
        {}, webhook("17841400000000001", text("1230000000000001", "m1", "Bin day?"))
    )
    assert first.conversation_id == "instagram:17841400000000001:1230000000000001"
    assert (first.text, first.message_id) == ("Bin day?", "m1")
    [second] = adapter.parse({}, webhook("17841400000000002", text("1230000000000009", "m2", "Hi")))
    assert second.account == "17841400000000002"
    parsed = adapter.read({}, webhook("99", text("1", "m3", "not ours")))
    assert parsed.messages == [] and parsed.ignored


def test_a_messenger_webhook_is_not_instagram(adapter: InstagramAdapter) -> None:
    with pytest.raises(PayloadError):
        adapter.read({}, json.dumps({"object": "page", "entry": []}).encode())


def test_read_receipt_names_the_message(adapter: InstagramAdapter) -> None:
    seen = {
        "sender": {"id": "1230000000000001"},
        "recipient": {"id": "17841400000000001"},
        "timestamp": 1732352400000,
        "read": {"mid": "m_sent_9"},
    }
    [receipt] = adapter.read({}, webhook("17841400000000001", seen)).receipts
    assert (receipt.status, receipt.provider_ids, receipt.channel) == (
        "read",
        ("m_sent_9",),
        "instagram",
    )
    assert receipt.conversation_id == "instagram:17841400000000001:1230000000000001"


async def test_send_with_the_accounts_token(
    adapter: InstagramAdapter, provider: FakeProvider
) -> None:
    result = await adapter.send("17841400000000002", "1230000000000009", OutboundMessage("Tuesday"))
    assert result.ok
    [request] = provider.requests
    assert request.path == "/v19.0/me/messages"
    assert request.query == {"access_token": "IG-TOKEN-2"}
    assert request.json()["recipient"] == {"id": "1230000000000009"}
    tagged = await adapter.send(
        "17841400000000001", "1", OutboundMessage("Agent", tag="HUMAN_AGENT")
    )
    assert tagged.ok and provider.requests[1].json()["tag"] == "HUMAN_AGENT"
    provider.script(
        Answer(400, {"error": {"message": "outside window", "code": 10, "error_subcode": 2018278}})
    )
    closed = await adapter.send("17841400000000001", "1", OutboundMessage("late"))
    assert (closed.outcome, closed.code) == ("failed", "10/2018278")
    assert (await adapter.send("nobody", "1", OutboundMessage("x"))).outcome == "failed"


def test_from_config_names_wrong_keys() -> None:
    env = {"IG_SECRET": "s", "IG_VERIFY": "v", "IG_TOKEN": "t"}
    section = Section(
        {
            "app_secret": "${IG_SECRET}",
            "verify_token": "${IG_VERIFY}",
            "accounts": [{"account_id": "17841400000000001", "token": "${IG_TOKEN}"}],
        },
        "credentials.yml",
        "bot.channels.rasa.InstagramInput",
        env,
    )
    adapter = InstagramAdapter.from_config(section)
    assert list(adapter.accounts()) == ["17841400000000001"]
    typo = Section(
        {"app_secret": "x", "verify_token": "y", "accounts": [{"acount_id": "1", "token": "t"}]},
        "credentials.yml",
        "bot.channels.rasa.InstagramInput",
        env,
    )
    with pytest.raises(ConfigError, match="acount_id"):
        InstagramAdapter.from_config(typo)
