"""The Rasa inputs inside a real Sanic server, registered the way ``rasa run`` does it.

Since the public edge took the webhooks (finding 12), the Rasa server serves none of them:
the inputs only start the inbox and outbox workers with the server and stop them with it.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio
from rasa.core.channels.channel import UserMessage, register
from sanic import Sanic

import bot.channels.rasa as rasa_channels
from bot.channels.base import InboundMessage
from bot.channels.inbox import Inbox
from bot.channels.messenger import MessengerAdapter, MessengerPage
from bot.channels.rasa import ChannelRuntime, MessengerInput, WhatsAppInput
from bot.channels.twilio import TwilioAccount, TwilioAdapter
from bot.testing.providers import FakeProvider

TOKEN = "0123456789abcdef0123456789abcdef"
NUMBER = "+441234567890"


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
    account = TwilioAccount(NUMBER, "AC00000000000000000000000000000001", TOKEN)
    channels: list[Any] = [
        WhatsAppInput(TwilioAdapter([account], api_base_url=provider.url, timeout=1.0)),
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


async def test_no_webhook_is_served_and_queued_messages_are_answered(
    server: tuple[str, FakeAgent],
    provider: FakeProvider,
    async_redis: redis.asyncio.Redis,
    namespace: str,
) -> None:
    # one server per test module: Sanic 21.12 leaves its TCP server for the GC to warn about
    base, agent = server
    async with aiohttp.ClientSession() as session:
        for channel in ("whatsapp", "messenger"):
            for method in ("GET", "POST"):
                async with session.request(
                    method, f"{base}/webhooks/{channel}/webhook", data=b"x"
                ) as answer:
                    assert answer.status == 404, (channel, method)

    message = InboundMessage(
        channel="whatsapp",
        account=NUMBER,
        sender="+447700900123",
        message_id="SM0001",
        text="When is my bin day?",
        received_at=time.time(),
    )
    await Inbox(async_redis, namespace).accept([message])  # what the edge does
    async with asyncio.timeout(10):
        while not provider.requests:
            await asyncio.sleep(0.05)
    [request] = provider.requests
    assert request.form()["Body"] == "You said: When is my bin day?"
    assert request.form()["To"] == "whatsapp:+447700900123"
    assert [seen.sender_id for seen in agent.seen] == [f"whatsapp:{NUMBER}:+447700900123"]
