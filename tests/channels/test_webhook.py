from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import pytest
import redis.asyncio
from twilio.request_validator import RequestValidator

from bot.channels import delivery
from bot.channels.inbox import Inbox
from bot.channels.messenger import MessengerAdapter, MessengerPage
from bot.channels.telegram import TelegramAdapter, TelegramBotAccount
from bot.channels.twilio import TwilioAccount, TwilioAdapter
from bot.channels.twitter import TwitterAccount, TwitterAdapter
from bot.channels.webhook import Webhook, dead_letters
from bot.testing.channels import webhook_body

URL = "https://council.example.gov.uk/webhooks/whatsapp/webhook"
TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.fixture
async def inbox(async_redis: redis.asyncio.Redis, namespace: str) -> AsyncIterator[Inbox]:
    made = Inbox(async_redis, namespace)
    await made.ensure_group()
    yield made


def twilio_hook(inbox: Inbox, max_body: int = 65536) -> Webhook:
    account = TwilioAccount("+441234567890", "AC00000000000000000000000000000001", TOKEN)
    return Webhook(TwilioAdapter([account]), inbox, max_body_bytes=max_body)


def twilio_headers(body: bytes) -> dict[str, str]:
    signature = RequestValidator(TOKEN).compute_signature(URL, dict(parse_qsl(body.decode())))
    return {"X-Twilio-Signature": signature}


async def test_signed_message_is_queued_once(
    inbox: Inbox, async_redis: redis.asyncio.Redis
) -> None:
    hook = twilio_hook(inbox)
    body = webhook_body("twilio", "whatsapp_text.txt")
    answer = await hook.receive(URL, twilio_headers(body), body)
    assert (answer.status, answer.content_type) == (200, "text/xml")
    assert "<Response>" in answer.body
    replay = await hook.receive(URL, twilio_headers(body), body)
    assert replay.status == 200  # the provider must stop retrying...
    assert await async_redis.xlen(inbox.stream) == 1  # ...but nothing is queued twice


async def test_bad_signature_is_refused_before_parsing(
    inbox: Inbox, async_redis: redis.asyncio.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    hook = twilio_hook(inbox)
    body = webhook_body("twilio", "whatsapp_text.txt")
    answer = await hook.receive(URL, {"X-Twilio-Signature": "AAAA"}, body)
    assert answer.status == 403
    assert await async_redis.xlen(inbox.stream) == 0
    assert "bin+day" not in caplog.text and "bin day" not in caplog.text  # body never logged


async def test_oversized_body_is_refused(inbox: Inbox) -> None:
    hook = twilio_hook(inbox, max_body=100)
    body = webhook_body("twilio", "whatsapp_text.txt")
    assert (await hook.receive(URL, twilio_headers(body), body)).status == 413
    assert (await hook.receive(URL, {"Content-Length": "5000000"}, b"")).status == 413


def messenger_hook(inbox: Inbox, secret: str = "app-secret") -> Webhook:
    adapter = MessengerAdapter([MessengerPage("1", "t")], app_secret=secret, verify_token="v")
    return Webhook(adapter, inbox)


def meta_headers(body: bytes, secret: str = "app-secret") -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}"}


@pytest.mark.parametrize(
    "body",
    [
        b'{"object":"page","entry":"nope"}',
        b"[" * 100_000 + b"]" * 100_000,  # RecursionError in the decoder
        b"\xff\xfe not even UTF-8",
    ],
)
async def test_signed_but_malformed_body_is_dead_lettered_not_retried(
    inbox: Inbox, async_redis: redis.asyncio.Redis, namespace: str, body: bytes
) -> None:
    hook = messenger_hook(inbox)
    hook.max_body_bytes = len(body) + 1
    answer = await hook.receive("", meta_headers(body), body)
    assert answer.status == 200  # a 4xx or 5xx would make Meta retry it for hours
    [dead] = await dead_letters(async_redis, namespace)
    assert dead["channel"] == "messenger" and dead["reason"]
    assert await async_redis.xlen(inbox.stream) == 0


async def test_one_odd_event_never_costs_its_sibling(
    inbox: Inbox, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    # Meta's policy-enforcement notice has no sender.id; a huge timestamp is malformed
    events = [
        {
            "recipient": {"id": "1"},
            "timestamp": 1732352399000,
            "policy_enforcement": {"action": "block", "reason": "violation"},
        },
        {
            "sender": {"id": "55"},
            "recipient": {"id": "1"},
            "timestamp": 1e308,
            "message": {"mid": "m_bad", "text": "x"},
        },
        {
            "sender": {"id": "55"},
            "recipient": {"id": "1"},
            "timestamp": 1732352399000,
            "message": {"mid": "m_good", "text": "Is the tip open?"},
        },
    ]
    body = json.dumps({"object": "page", "entry": [{"id": "1", "messaging": events}]}).encode()
    answer = await messenger_hook(inbox).receive("", meta_headers(body), body)
    assert answer.status == 200
    [(_, fields)] = await async_redis.xrange(inbox.stream)
    assert json.loads(fields["message"])["message_id"] == "m_good"
    [dead] = await dead_letters(async_redis, namespace)
    assert "messaging[1]" in dead["reason"] and "timestamp" in dead["reason"]


async def test_lone_surrogate_is_stored_not_a_500(
    inbox: Inbox, async_redis: redis.asyncio.Redis
) -> None:
    body = (
        b'{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":"55"},'
        b'"timestamp":1732352399000,"message":{"mid":"m_s","text":"bin \\udc00 day"}}]}]}'
    )
    body = body.replace(b"\\\\", b"\\")
    answer = await messenger_hook(inbox).receive("", meta_headers(body), body)
    assert answer.status == 200
    [(_, fields)] = await async_redis.xrange(inbox.stream)
    assert json.loads(fields["message"])["text"] == "bin \ufffd day"


async def test_receipts_update_delivery_state(
    inbox: Inbox, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    await delivery.record(
        async_redis,
        delivery.sent_call("messenger:1:55", "m_reply", at=1732352390.0, namespace=namespace),
    )
    events = [
        {
            "sender": {"id": "55"},
            "recipient": {"id": "1"},
            "timestamp": 1732352399000,
            "read": {"watermark": 1732352398000},
        }
    ]
    body = json.dumps({"object": "page", "entry": [{"id": "1", "messaging": events}]}).encode()
    assert (await messenger_hook(inbox).receive("", meta_headers(body), body)).status == 200
    [state] = await delivery.states(async_redis, "messenger:1:55", namespace=namespace)
    assert state.status == "read"
    assert await async_redis.xlen(inbox.stream) == 0


async def test_redis_down_means_no_200(redis_url: str, namespace: str) -> None:
    dead = redis.asyncio.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        hook = twilio_hook(Inbox(dead, namespace))
        body = webhook_body("twilio", "whatsapp_text.txt")
        assert (await hook.receive(URL, twilio_headers(body), body)).status == 503
    finally:
        await dead.close()
        await dead.connection_pool.disconnect()


async def test_get_challenges(inbox: Inbox) -> None:
    messenger = Webhook(
        MessengerAdapter([MessengerPage("1", "t")], app_secret="s", verify_token="v"), inbox
    )
    ok = messenger.challenge(
        {"hub.mode": "subscribe", "hub.verify_token": "v", "hub.challenge": "42"}
    )
    assert (ok.status, ok.body) == (200, "42")
    assert messenger.challenge({"hub.mode": "subscribe", "hub.verify_token": "x"}).status == 403
    twitter = Webhook(TwitterAdapter([TwitterAccount("1", "t")], consumer_secret="c"), inbox)
    crc = twitter.challenge({"crc_token": "abc"})
    assert crc.status == 200 and json.loads(crc.body)["response_token"].startswith("sha256=")
    assert twitter.challenge({"crc_token": ""}).status == 400
    assert twitter.challenge({}).status == 405
    telegram = Webhook(TelegramAdapter([TelegramBotAccount("b", "1:a", "s")]), inbox)
    assert telegram.challenge({}).status == 405


async def test_telegram_update_queued(inbox: Inbox, async_redis: redis.asyncio.Redis) -> None:
    hook = Webhook(TelegramAdapter([TelegramBotAccount("councilbot", "1:a", "sekret")]), inbox)
    body = webhook_body("telegram", "text.json")
    assert (
        await hook.receive("", {"X-Telegram-Bot-Api-Secret-Token": "wrong"}, body)
    ).status == 403
    assert (
        await hook.receive("", {"X-Telegram-Bot-Api-Secret-Token": "sekret"}, body)
    ).status == 200
    [(_, fields)] = await async_redis.xrange(inbox.stream)
    assert json.loads(fields["message"])["account"] == "councilbot"


async def test_twilio_get_webhook_is_received(
    inbox: Inbox, async_redis: redis.asyncio.Redis
) -> None:
    url = f"{URL}?{webhook_body('twilio', 'whatsapp_text.txt').decode()}"
    signature = RequestValidator(TOKEN).compute_signature(url, {})
    answer = await twilio_hook(inbox).get(url, {"X-Twilio-Signature": signature})
    assert (answer.status, answer.content_type) == (200, "text/xml")
    [(_, fields)] = await async_redis.xrange(inbox.stream)
    assert json.loads(fields["message"])["text"] == "When is my bin day?"
    assert (await twilio_hook(inbox).get(url, {"X-Twilio-Signature": "AAAA"})).status == 403
    assert (await twilio_hook(inbox).get(URL, {})).status == 405  # no query: nothing to read


async def test_a_message_the_inbox_cannot_store_is_dead_lettered_not_a_500(
    inbox: Inbox, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    # a bot name with ':' cannot make a conversation id (a configuration slip)
    hook = Webhook(TelegramAdapter([TelegramBotAccount("council:bot", "1:a", "sekret")]), inbox)
    body = webhook_body("telegram", "text.json")
    answer = await hook.receive("", {"X-Telegram-Bot-Api-Secret-Token": "sekret"}, body)
    assert answer.status == 200
    [dead] = await dead_letters(async_redis, namespace)
    assert "could not be stored" in dead["reason"]
    assert await async_redis.xlen(inbox.stream) == 0
