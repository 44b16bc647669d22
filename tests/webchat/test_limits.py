"""Abuse: per-conversation and per-address limits answer 429 with Retry-After, and one
conversation or address reaching its limit never refuses another."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import redis.asyncio

from bot.keys import key
from bot.testing.edge import serving
from bot.testing.webchat import WebChatClient
from bot.webchat.app import WebChat
from bot.webchat.config import WebChatLimits

from .conftest import COUNCIL


@pytest.fixture
def limits() -> WebChatLimits:
    return WebChatLimits(messages_per_minute=3, sessions_per_hour=4, address_requests_per_minute=50)


@pytest.fixture
def webchat(webchat: WebChat) -> WebChat:
    # behind the council's reverse proxy on loopback: X-Forwarded-For names the resident
    return dataclasses.replace(webchat, trusted_proxies=("127.0.0.1",))


Widgets = Callable[[str], WebChatClient]


@pytest.fixture
async def from_address(http: httpx.AsyncClient) -> AsyncIterator[Widgets]:
    """Widgets of residents at an address (forwarded by the trusted proxy)."""
    opened: list[httpx.AsyncClient] = []

    def widget(address: str) -> WebChatClient:
        client = httpx.AsyncClient(
            base_url=http.base_url, headers={**http.headers, "X-Forwarded-For": address}
        )
        opened.append(client)
        return WebChatClient(client, COUNCIL)

    yield widget
    for client in opened:
        await client.aclose()


async def test_a_chatty_conversation_is_slowed_down_and_others_are_not(
    from_address: Widgets,
) -> None:
    chatty, quiet = from_address("203.0.113.5"), from_address("203.0.113.5")
    await chatty.start()
    await quiet.start()
    assert [(await chatty.send(f"m{n}")).status_code for n in range(3)] == [202, 202, 202]
    refused = await chatty.send("one more")
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["access-control-expose-headers"] == "Retry-After"
    assert (await quiet.send("hello")).status_code == 202  # same address, its own budget


async def test_one_address_starting_many_chats_does_not_lock_out_another(
    from_address: Widgets, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    busy = from_address("198.51.100.7")
    for _ in range(4):
        await busy.start()
    refused = await busy.http.post("/webchat/sessions", json={"council": COUNCIL})
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 60  # an hourly window
    assert await from_address("198.51.100.8").start()
    # counted as a keyed digest: the address itself is nowhere in Redis
    names = await async_redis.keys(key(namespace, "webchat", "rate", "*"))
    assert names and not any("198.51.100" in name for name in names)


async def test_without_trusted_proxies_the_forwarded_header_changes_nothing(
    webchat: WebChat, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    direct_chat = dataclasses.replace(webchat, trusted_proxies=())
    async with (
        serving([], async_redis, namespace, parts=[direct_chat]) as url,
        httpx.AsyncClient(base_url=url, headers={"Origin": "https://www.ashvale.gov.uk"}) as http,
    ):
        answers = []
        for n in range(5):
            answers.append(
                (
                    await http.post(
                        "/webchat/sessions",
                        json={"council": COUNCIL},
                        headers={"X-Forwarded-For": f"192.0.2.{n}"},
                    )
                ).status_code
            )
    assert answers == [201, 201, 201, 201, 429]


async def test_past_the_edges_stream_limit_a_new_chat_waits_and_webhooks_keep_their_room(
    webchat: WebChat, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    # every open chat holds one of the edge's connections: past max_streams a new stream is
    # 503 busy with Retry-After (the widget reconnects) instead of taking the connections
    # residents' webhooks are served on
    small = dataclasses.replace(webchat, max_streams=1)
    async with (
        serving([], async_redis, namespace, parts=[small]) as url,
        httpx.AsyncClient(base_url=url, headers={"Origin": "https://www.ashvale.gov.uk"}) as http,
    ):
        await small.fanout.ready.wait()
        first, second = WebChatClient(http, COUNCIL), WebChatClient(http, COUNCIL)
        await first.start()
        await second.start()
        holding = asyncio.create_task(first.events(lambda events: False))
        async with asyncio.timeout(5):
            while small.fanout.listening < 1:
                await asyncio.sleep(0.01)
        refused = await http.get("/webchat/events", headers=second.auth)
        assert refused.status_code == 503
        assert refused.json()["error"] == "busy"
        assert refused.headers["retry-after"] == "15"
        holding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await holding
        async with asyncio.timeout(5):
            while small.fanout.listening:
                await asyncio.sleep(0.01)
            events = await second.events(lambda events: bool(events))
        assert events[0].kind == "status"
