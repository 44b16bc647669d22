"""The edge's health routes: a cheap liveness check, and the channels' health behind a token."""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence

import aiohttp
import httpx
import pytest
import redis.asyncio

from bot import settings
from bot.channels.base import InboundMessage, OutboundMessage
from bot.channels.inbox import Inbox, InboxWorker
from bot.channels.outbox import OutboxWorker
from bot.edge.app import create_app
from bot.errors import ConfigError
from bot.testing.edge import serving

from .conftest import channels

TOKEN = "health-token-0123456789abcdef0123456789"


async def get(url: str, token: str | None = None) -> tuple[int, str, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as answer:
        return answer.status, await answer.text(), {k.lower(): v for k, v in answer.headers.items()}


async def echo(incoming: InboundMessage) -> Sequence[OutboundMessage]:
    return [OutboundMessage(f"reply to {incoming.text}")]


async def test_the_channels_health_needs_the_token(
    async_redis: redis.asyncio.Redis, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNCIL_HEALTH_TOKEN", TOKEN)
    async with serving(channels(), async_redis, namespace) as edge:
        assert (await get(f"{edge}/health"))[0] == 200  # liveness stays open for load balancers
        for wrong in (None, "", "health-token", TOKEN + "x", TOKEN.upper()):
            status, text, headers = await get(f"{edge}/health/channels", wrong)
            assert (status, text) == (401, "token required")
            assert headers["www-authenticate"] == "Bearer"
        status, text, headers = await get(f"{edge}/health/channels", TOKEN)
        assert status == 503  # the edge alone: no worker reads what it queues
        assert headers["cache-control"] == "no-store"
        assert "no inbox worker is running" in text


async def test_without_a_token_the_channels_health_is_not_served(
    async_redis: redis.asyncio.Redis, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COUNCIL_HEALTH_TOKEN", raising=False)
    async with serving(channels(), async_redis, namespace) as edge:
        assert (await get(f"{edge}/health/channels", ""))[0] == 404
        assert (await get(f"{edge}/health/channels", TOKEN))[0] == 404
    monkeypatch.setenv("COUNCIL_HEALTH_TOKEN", "short")
    settings.use(None)  # the environment is read once per process: read it again
    with pytest.raises(ConfigError, match="COUNCIL_HEALTH_TOKEN: use at least 32"):
        create_app(channels(), Inbox(async_redis, namespace))


async def test_live_workers_report_ok_and_nothing_personal(
    async_redis: redis.asyncio.Redis, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNCIL_HEALTH_TOKEN", TOKEN)
    inbox = Inbox(async_redis, namespace)
    await inbox.ensure_group()
    reader = InboxWorker(async_redis, echo, namespace, consumer="edge-test-1-abcdef", block_ms=10)
    sender = OutboxWorker(async_redis, {}, namespace, consumer="edge-test-1-abcdef", block_ms=10)
    await sender.ensure_group()
    await reader.step(block=False)
    await sender.step(block=False)
    await inbox.accept(
        [
            InboundMessage(
                "telegram", "councilbot", "987654321", "77", "My name is Sam Resident",
                time.time(), display_name="Sam Resident",
            )
        ]
    )  # fmt: skip
    async with serving(channels(), async_redis, namespace) as edge:
        status, text, _ = await get(f"{edge}/health/channels", TOKEN)
    assert status == 200
    report = httpx.Response(200, text=text).json()
    assert report["ok"] is True and report["problems"] == []
    assert report["inbox"]["length"] == 1 and report["inbox"]["live_workers"] == 1
    assert report["outbox"]["workers"][0]["consumer"] == "edge-test-1-abcdef"
    for personal in ("987654321", "Sam Resident", "councilbot"):
        assert personal not in text


async def test_redis_down_is_unhealthy_not_an_error(namespace: str) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    down = redis.asyncio.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
    app = create_app(channels(), Inbox(down, namespace), health_token=TOKEN)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
        live = await client.get("/health")
        detail = await client.get("/health/channels", headers={"Authorization": f"Bearer {TOKEN}"})
    await down.close()
    assert (live.status_code, live.json()) == (503, {"status": "redis unavailable"})
    assert detail.status_code == 503
    assert detail.json() == {"ok": False, "problems": ["Redis is unavailable"]}
