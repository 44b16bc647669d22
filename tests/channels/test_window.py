from __future__ import annotations

import redis.asyncio

from bot.channels.window import touch, window_state

DAY = 24 * 3600.0
T = 1732352400.0  # 2024-11-23T09:00:00Z


async def test_whatsapp_window(async_redis: redis.asyncio.Redis, namespace: str) -> None:
    cid = "whatsapp:+441234567890:+447700900123"
    assert await window_state(async_redis, cid, namespace=namespace, now=T) == {
        "open": False,
        "closes_at": None,
        "human_agent_until": None,
        "last_inbound_at": None,
    }
    await touch(async_redis, cid, T, namespace, now=T)
    await touch(async_redis, cid, T - 100, namespace, now=T)  # a late retry never moves it back
    state = await window_state(async_redis, cid, namespace=namespace, now=T + DAY - 1)
    assert state is not None and state["open"] is True
    assert state["closes_at"] == "2024-11-24T09:00:00+00:00"
    assert state["human_agent_until"] is None
    closed = await window_state(async_redis, cid, namespace=namespace, now=T + DAY + 1)
    assert closed is not None and closed["open"] is False


async def test_messenger_human_agent_extension(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    cid = "messenger:104857600000001:6789"
    await touch(async_redis, cid, T, namespace, now=T)
    state = await window_state(async_redis, cid, namespace=namespace, now=T + 2 * DAY)
    assert state is not None and state["open"] is False
    assert state["human_agent_until"] == "2024-11-30T09:00:00+00:00"


async def test_channels_without_a_window(async_redis: redis.asyncio.Redis, namespace: str) -> None:
    for cid in ("telegram:bot:1", "twitter:1:2", "sms:+44:+44", "some-rest-user"):
        assert await window_state(async_redis, cid, namespace=namespace) is None


async def test_instagram_has_messengers_window(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    cid = "instagram:17841400000000001:1230000000000001"
    await touch(async_redis, cid, T, namespace, now=T)
    open_state = await window_state(async_redis, cid, namespace=namespace, now=T + DAY - 1)
    assert open_state is not None and open_state["open"] is True
    state = await window_state(async_redis, cid, namespace=namespace, now=T + 2 * DAY)
    assert state is not None and state["open"] is False
    assert state["human_agent_until"] == "2024-11-30T09:00:00+00:00"
