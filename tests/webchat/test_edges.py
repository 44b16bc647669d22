"""Edges keep nothing: a resident's widget may talk to any of them, and reconnect to another."""

from __future__ import annotations

import asyncio

import httpx
import redis.asyncio

from bot.channels.base import OutboundMessage
from bot.channels.inbox import Inbox
from bot.testing.edge import serving
from bot.testing.webchat import WebChatClient
from bot.webchat.adapter import WebChatAdapter
from bot.webchat.app import WebChat

from .conftest import COUNCIL, ORIGIN, messages


async def test_a_conversation_started_on_one_edge_goes_on_on_another(
    resident: WebChatClient,
    webchat: WebChat,
    async_redis: redis.asyncio.Redis,
    namespace: str,
) -> None:
    other = WebChat(webchat.config, webchat.secret, Inbox(async_redis, namespace), webchat.hours)
    await resident.send("first, on edge one")
    sender = resident.token.split(".")[2]
    async with (
        serving([], async_redis, namespace, parts=[other]) as url,
        httpx.AsyncClient(base_url=url, headers={"Origin": ORIGIN}) as http,
    ):
        await other.fanout.ready.wait()
        moved = WebChatClient(http, COUNCIL)
        moved.token = resident.token  # the same tab, its load balancer chose another edge

        async def reply_when_listening() -> None:
            async with asyncio.timeout(5):
                while not other.fanout.streams(sender):
                    await asyncio.sleep(0.01)
            await WebChatAdapter(async_redis, namespace, keep_days=1).send(
                COUNCIL, sender, OutboundMessage("answered, seen on edge two")
            )

        async with asyncio.timeout(10):
            events, _ = await asyncio.gather(
                moved.events(lambda seen: len(messages(seen)) >= 2), reply_when_listening()
            )
    assert [m["text"] for m in messages(events)] == [
        "first, on edge one",
        "answered, seen on edge two",
    ]
