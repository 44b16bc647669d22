"""The input channels inside a real Sanic server, registered the way ``rasa run`` does it."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
import redis.asyncio
from rasa.core.channels.channel import UserMessage, register
from sanic import Sanic
from twilio.request_validator import RequestValidator

import bot.channels.rasa as rasa_channels
from bot.channels.messenger import MessengerAdapter, MessengerPage
from bot.channels.rasa import ChannelRuntime, MessengerInput, WhatsAppInput
from bot.channels.twilio import TwilioAccount, TwilioAdapter
from bot.testing.providers import FakeProvider

from .conftest import load

TOKEN = "0123456789abcdef0123456789abcdef"


class FakeAgent:
    """Stands in for Rasa's agent: one reply per message."""

    def __init__(self) -> None:
        self.seen: list[UserMessage] = []

    async def handle_message(self, message: UserMessage) -> None:
        self.seen.append(message)
        assert message.output_channel is not None
        await message.output_channel.send_text_message(
            message.sender_id or "", f"You said: {message.text}"
        )


@pytest.fixture
async def server(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, namespace: str, provider: FakeProvider
) -> AsyncIterator[tuple[str, FakeAgent]]:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("COUNCIL_NAMESPACE", namespace)
    monkeypatch.setattr(rasa_channels, "runtime", ChannelRuntime())
    account = TwilioAccount("+441234567890", "AC00000000000000000000000000000001", TOKEN)
    channels: list[Any] = [
        WhatsAppInput(TwilioAdapter([account], api_base_url=provider.url, timeout=1.0), 4096),
        MessengerInput(
            MessengerAdapter([MessengerPage("1", "t")], app_secret="s", verify_token="v")
        ),
    ]
    app = Sanic(f"channels_test_{uuid.uuid4().hex[:8]}")
    agent = FakeAgent()
    app.ctx.agent = agent
    register(channels, app, route="/webhooks/")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    running = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    assert running is not None
    await running.startup()
    await running.before_start()
    await running.after_start()
    yield f"http://127.0.0.1:{port}", agent
    await running.before_stop()
    running.close()
    await running.wait_closed()
    await running.after_stop()
    sock.close()


async def test_whatsapp_webhook_end_to_end(
    server: tuple[str, FakeAgent],
    provider: FakeProvider,
    async_redis: redis.asyncio.Redis,
    namespace: str,
) -> None:
    base, agent = server
    url = f"{base}/webhooks/whatsapp/webhook"
    body = load("twilio", "whatsapp_text.txt")
    signature = RequestValidator(TOKEN).compute_signature(url, dict(parse_qsl(body.decode())))
    headers = {
        "X-Twilio-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    async with aiohttp.ClientSession() as session:
        for _ in range(2):  # Twilio retries
            async with session.post(url, data=body, headers=headers) as answer:
                assert answer.status == 200
                assert "<Response>" in await answer.text()
        async with session.post(
            url, data=body, headers={**headers, "X-Twilio-Signature": "x"}
        ) as bad:
            assert bad.status == 403
        async with session.post(url, data=b"x" * 5000, headers=headers) as big:
            assert big.status == 413
        async with session.get(
            f"{base}/webhooks/messenger/webhook",
            params={"hub.mode": "subscribe", "hub.verify_token": "v", "hub.challenge": "77"},
        ) as challenge:
            assert (challenge.status, await challenge.text()) == (200, "77")
    for _ in range(100):
        if provider.requests:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    assert len(agent.seen) == 1
    [request] = provider.requests
    assert request.form()["Body"] == "You said: When is my bin day?"
