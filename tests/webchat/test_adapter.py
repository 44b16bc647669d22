"""The web chat adapter: what the outbox sends becomes an event the widget shows."""

from __future__ import annotations

import pytest
import redis.asyncio

from bot.channels.base import Button, OutboundMessage
from bot.errors import PayloadError, SignatureError
from bot.webchat.adapter import UPLOAD_PAYLOAD, WebChatAdapter
from bot.webchat.config import WebChatConfig
from bot.webchat.events import EventLog

from .conftest import COUNCIL

CONVERSATION = "0123456789abcdef0123456789abcdef"


async def test_buttons_stay_buttons_and_a_photo_request_becomes_the_upload_control(
    async_redis: redis.asyncio.Redis, namespace: str, config: WebChatConfig
) -> None:
    adapter = WebChatAdapter(async_redis, namespace, config=config, keep_days=1)
    message = OutboundMessage(
        "Can you send a photo of it?",
        (Button("Add a photo", UPLOAD_PAYLOAD), Button("Skip", "/skip_photo"), Button("No")),
    )
    result = await adapter.send(COUNCIL, CONVERSATION, message)
    assert result.ok
    [event] = await EventLog(async_redis, namespace).since(CONVERSATION, None)
    assert event.id == result.provider_id
    assert event.data["from"] == "bot"
    assert event.data["buttons"] == [
        {"title": "Skip", "payload": "/skip_photo"},
        {"title": "No", "payload": "No"},
    ]
    assert event.data["upload"] == {
        "accept": list(config.limits.upload_types),
        "max_bytes": config.limits.max_upload_bytes,
    }


async def test_a_send_while_redis_is_down_is_tried_again_later(
    config: WebChatConfig, namespace: str
) -> None:
    unreachable = redis.asyncio.Redis(port=1, decode_responses=True, socket_connect_timeout=0.5)
    adapter = WebChatAdapter(unreachable, namespace, config=config, keep_days=1)
    result = await adapter.send(COUNCIL, CONVERSATION, OutboundMessage("hello"))
    assert result.outcome == "retry"
    await unreachable.close()


def test_the_web_chat_has_no_webhook(config: WebChatConfig) -> None:
    adapter = WebChatAdapter(config=config)
    with pytest.raises(SignatureError):
        adapter.verify({}, b"{}", "https://edge.example/webhooks/webchat/webhook")
    with pytest.raises(PayloadError):
        adapter.read({}, b"{}")
    assert adapter.accounts() == [COUNCIL]
