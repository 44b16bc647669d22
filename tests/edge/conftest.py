"""An edge serving WhatsApp (Twilio) and Telegram on a loopback port, in the test's loop."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import pytest
import redis.asyncio
from twilio.request_validator import RequestValidator

from bot.channels.registry import ConfiguredChannel
from bot.channels.telegram import TelegramAdapter, TelegramBotAccount
from bot.channels.twilio import TwilioAccount, TwilioAdapter
from bot.testing.channels import webhook_body as load
from bot.testing.edge import channel, serving

TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"
TWILIO_SID = "AC00000000000000000000000000000001"
NUMBER = "+441234567890"
TELEGRAM_SECRET = "edge_test_secret_token"
TELEGRAM_TOKEN = "123456:edge-test-bot-token"
MAX_BODY = 8192


def channels() -> list[ConfiguredChannel]:
    """WhatsApp and Telegram, with a small body limit."""
    twilio = TwilioAdapter([TwilioAccount(NUMBER, TWILIO_SID, TWILIO_TOKEN)])
    telegram = TelegramAdapter([TelegramBotAccount("councilbot", TELEGRAM_TOKEN, TELEGRAM_SECRET)])
    return [channel("whatsapp", twilio, MAX_BODY), channel("telegram", telegram, MAX_BODY)]


@pytest.fixture
async def edge(async_redis: redis.asyncio.Redis, namespace: str) -> AsyncIterator[str]:
    """The edge's base URL."""
    async with serving(channels(), async_redis, namespace) as url:
        yield url


def signed_whatsapp(url: str, body: bytes | None = None) -> tuple[bytes, dict[str, str]]:
    """A recorded Twilio webhook (Twilio's docs' example fields) signed for ``url``."""
    body = body if body is not None else load("twilio", "whatsapp_text.txt")
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(
        url, dict(parse_qsl(body.decode()))
    )
    return body, {
        "X-Twilio-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def telegram_update(text: str = "When is my bin day?", update_id: int = 1) -> bytes:
    """The recorded Telegram update (Bot API docs' Update object) with new text and id."""
    update = json.loads(load("telegram", "text.json"))
    update["update_id"] = update_id
    update["message"]["text"] = text
    return json.dumps(update).encode()


def telegram_headers(secret: str = TELEGRAM_SECRET) -> dict[str, str]:
    """Headers Telegram sends with a webhook set up with ``secret_token``."""
    return {"X-Telegram-Bot-Api-Secret-Token": secret, "Content-Type": "application/json"}
