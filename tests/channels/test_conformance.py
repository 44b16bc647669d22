"""Every payload in the conformance corpus, written by others, through verify, read and the webhook.

Each ``tests/data/webhooks/<channel>/*.case.json`` holds a public example (its ``_source`` says
where from: the platform's documentation, an SDK's test vectors, another open-source inbox's
fixtures), the accounts it needs, and what must come out: the messages (only the fields listed
are compared), the delivery receipts, how many events are ignored and how many rejected. Twilio
vectors that are pre-signed carry their published signature; the others are signed here with
test secrets, the way the platform signs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis.asyncio
from twilio.request_validator import RequestValidator

from bot.channels.base import ChannelAdapter, InboundMessage, Parsed, Receipt
from bot.channels.inbox import Inbox
from bot.channels.instagram import InstagramAdapter
from bot.channels.messenger import MessengerAdapter
from bot.channels.meta import MetaAccount
from bot.channels.telegram import TelegramAdapter, TelegramBotAccount
from bot.channels.twilio import Form, TwilioAccount, TwilioAdapter
from bot.channels.twitter import TwitterAccount, TwitterAdapter
from bot.channels.webhook import Webhook, dead_letters
from bot.errors import SignatureError
from bot.testing.channels import WEBHOOKS

CASES = sorted(WEBHOOKS.glob("*/*.case.json"))
SECRET = "corpus-app-secret"
TELEGRAM_SECRET = "corpus_secret_token"
NOW = 1732352400.0  # the clock the adapters are given (a tap is dated on arrival)


@pytest.fixture(scope="module")
def clock() -> Any:
    return lambda: NOW


class Request:
    """A case turned into what the provider would send."""

    def __init__(
        self,
        adapter: ChannelAdapter,
        url: str,
        headers: dict[str, str],
        signed: bytes,
        content: bytes,
        method: str = "POST",
    ) -> None:
        self.adapter, self.url, self.headers = adapter, url, headers
        self.signed, self.content, self.method = signed, content, method


def meta(case: dict[str, Any], adapter_class: type[MessengerAdapter | InstagramAdapter]) -> Request:
    body = json.dumps(case["body"]).encode()
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    adapter = adapter_class(
        [MetaAccount(account, "TOKEN") for account in case["accounts"]],
        app_secret=SECRET,
        verify_token="v",
        clock=lambda: NOW,
    )
    return Request(adapter, "", {"X-Hub-Signature-256": f"sha256={digest}"}, body, body)


def twitter(case: dict[str, Any]) -> Request:
    body = json.dumps(case["body"]).encode()
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    adapter = TwitterAdapter(
        [TwitterAccount(account, "TOKEN") for account in case["accounts"]], consumer_secret=SECRET
    )
    headers = {"x-twitter-webhooks-signature": "sha256=" + base64.b64encode(digest).decode()}
    return Request(adapter, "", headers, body, body)


def telegram(case: dict[str, Any]) -> Request:
    body = json.dumps(case["body"]).encode()
    adapter = TelegramAdapter(
        [TelegramBotAccount("councilbot", "1:TOKEN", TELEGRAM_SECRET)], clock=lambda: NOW
    )
    return Request(adapter, "", {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}, body, body)


def rule_signature(secret: str, url: str, params: list[list[str]]) -> str:
    # written from Twilio's description, independently of the adapter's code
    pairs = sorted((name, value) for name, value in params)
    signed = url + "".join(name + value for name, value in pairs)
    return base64.b64encode(
        hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()
    ).decode()


def twilio(case: dict[str, Any]) -> Request:
    accounts = [
        TwilioAccount(a["number"], a["account_sid"], a["auth_token"], {}, a.get("webhook_keys", {}))
        for a in case["accounts"]
    ]
    adapter = TwilioAdapter(accounts, clock=lambda: NOW)
    params = [tuple(pair) for pair in case.get("params", ())]
    url, method = case["url"], case["method"]
    if "raw_body" in case:
        body = case["raw_body"].encode()
    elif method == "GET":
        url, body = f"{url}?{urlencode(params)}", b""
    else:
        body = urlencode(params).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    sign = case.get("sign")
    token = case["accounts"][0]["auth_token"]
    if "signature" in case:
        headers["X-Twilio-Signature"] = case["signature"]
    elif sign is True:
        signed_params = Form([]) if method == "GET" else Form(params)
        headers["X-Twilio-Signature"] = RequestValidator(token).compute_signature(
            url, signed_params
        )
    else:
        algorithm, key = str(sign).split(":")
        secret = case["accounts"][0]["webhook_keys"][key]
        headers["X-Twilio-Signature"] = rule_signature(secret, url, case["params"])
        headers["X-Twilio-Webhooks-Signature-Settings"] = f"key={key},algorithm={algorithm}"
    content = urlencode(params).encode() if method == "GET" else body
    return Request(adapter, url, headers, body, content, method)


def request_for(path: Path) -> tuple[dict[str, Any], Request]:
    case = json.loads(path.read_text(encoding="utf-8"))
    channel = path.parent.name
    build = {
        "messenger": lambda c: meta(c, MessengerAdapter),
        "instagram": lambda c: meta(c, InstagramAdapter),
        "twitter": twitter,
        "telegram": telegram,
        "twilio": twilio,
    }[channel]
    return case, build(case)


def same(expected: Any, actual: Any) -> bool:
    """Expected fields only; floats approximately; "now" is the injected clock."""
    if expected == "now":
        return actual == NOW
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            same(value, actual.get(name)) for name, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list | tuple)
            and len(expected) == len(actual)
            and all(same(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, float) and isinstance(actual, int | float):
        return bool(actual == pytest.approx(expected))
    return bool(expected == actual)


def as_dict(item: InboundMessage | Receipt) -> dict[str, Any]:
    return asdict(item)


def check(parsed: Parsed, expect: Mapping[str, Any]) -> None:
    messages = [as_dict(m) for m in parsed.messages]
    receipts = [as_dict(r) for r in parsed.receipts]
    assert len(messages) == len(expect["messages"]), messages
    for wanted, got in zip(expect["messages"], messages, strict=True):
        assert same(wanted, got), (wanted, got)
    assert len(receipts) == len(expect["receipts"]), receipts
    for wanted, got in zip(expect["receipts"], receipts, strict=True):
        assert same(wanted, got), (wanted, got)
    assert len(parsed.ignored) == expect["ignored"], parsed.ignored
    assert len(parsed.rejected) == expect["rejected"], parsed.rejected


def test_the_corpus_covers_every_channel() -> None:
    channels = {path.parent.name for path in CASES}
    assert channels == {"messenger", "instagram", "twitter", "telegram", "twilio"}
    assert len(CASES) >= 60


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.name.split('.')[0]}")
async def test_corpus_case(path: Path, async_redis: redis.asyncio.Redis, namespace: str) -> None:
    case, request = request_for(path)
    assert case["_source"].strip()
    expect = case["expect"]
    inbox = Inbox(async_redis, namespace)
    await inbox.ensure_group()
    hook = Webhook(request.adapter, inbox)
    try:
        if expect.get("verify", True) is False:
            with pytest.raises(SignatureError):
                request.adapter.verify(request.headers, request.signed, request.url)
            answer = await hook.receive(request.url, request.headers, request.signed)
            assert answer.status == 403
            return
        request.adapter.verify(request.headers, request.signed, request.url)
        check(request.adapter.read(request.headers, request.content), expect)
        # and through the webhook: 200 whatever the content, messages queued, bad ones kept
        if request.method == "GET":
            answer = await hook.get(request.url, request.headers)
        else:
            answer = await hook.receive(request.url, request.headers, request.signed)
        assert answer.status == 200
        assert await async_redis.xlen(inbox.stream) == len(expect["messages"])
        assert len(await dead_letters(async_redis, namespace)) == (1 if expect["rejected"] else 0)
    finally:
        await request.adapter.aclose()
