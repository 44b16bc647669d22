"""A real edge serving the web chat on a loopback port, residents' widgets talking to it, and
the console fixtures (:mod:`bot.testing.console`: agents, browsers) for the widget's tests."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import time

import httpx
import pytest
import redis.asyncio

from bot.channels.inbox import Inbox
from bot.handoff.hours import OpeningHours
from bot.testing.console import *  # noqa: F403
from bot.testing.edge import serving
from bot.testing.webchat import SseEvent, WebChatClient
from bot.webchat.app import WebChat
from bot.webchat.config import WebChatConfig, WebChatLimits

ORIGIN = "https://www.ashvale.gov.uk"
COUNCIL = "ashvale"
TWILIO_NUMBER = "+441234567890"
ALWAYS_OPEN = OpeningHours(
    open_at=time(0, 0), close_at=time(23, 59, 59), weekdays=frozenset(range(7))
)


def messages(events: list[SseEvent]) -> list[dict[str, object]]:
    """The ``message`` events' data."""
    return [event.data for event in events if event.kind == "message"]


@pytest.fixture
def limits() -> WebChatLimits:
    """The limits the tests run with (override in a module to test them)."""
    return WebChatLimits(max_text_chars=200, max_upload_bytes=200_000)


@pytest.fixture
def hours() -> OpeningHours:
    """Opening hours (always open unless a module overrides it)."""
    return ALWAYS_OPEN


@pytest.fixture
def config(limits: WebChatLimits) -> WebChatConfig:
    """The demo council's chat, allowed from its own site."""
    return WebChatConfig(
        council_id=COUNCIL,
        name="Ashvale Council",
        greeting="Hello",
        allowed_origins=(ORIGIN,),
        continue_channels=("sms", "whatsapp"),
        continue_from=TWILIO_NUMBER,
        limits=limits,
    )


@pytest.fixture
def secret() -> str:
    """``COUNCIL_WEBCHAT_SECRET``."""
    return secrets.token_urlsafe(32)


@pytest.fixture
def webchat(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    config: WebChatConfig,
    secret: str,
    hours: OpeningHours,
) -> WebChat:
    """The web chat part of the edge."""
    return WebChat(config, secret, Inbox(async_redis, namespace), hours)


@pytest.fixture
async def edge(
    webchat: WebChat, async_redis: redis.asyncio.Redis, namespace: str
) -> AsyncIterator[str]:
    """The edge's base URL (no other channels)."""
    async with serving([], async_redis, namespace, parts=[webchat]) as url:
        await webchat.fanout.ready.wait()
        yield url


@pytest.fixture
async def http(edge: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser on the council's site (its requests carry the site's ``Origin``)."""
    async with httpx.AsyncClient(base_url=edge, headers={"Origin": ORIGIN}, timeout=10) as client:
        yield client


@pytest.fixture
async def resident(http: httpx.AsyncClient) -> WebChatClient:
    """A resident whose widget has started a conversation."""
    widget = WebChatClient(http, COUNCIL)
    await widget.start()
    return widget
