"""Request heads must arrive in time: on a new connection and on a kept-alive one."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import redis.asyncio

from bot.testing.edge import serving
from bot.testing.slow import SlowClient

from .conftest import channels

HEAD = b"POST /webhooks/telegram/webhook HTTP/1.1\r\nHost: edge\r\nX-Padding: " + b"a" * 200


async def test_a_head_sent_a_byte_at_a_time_is_cut_off(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    async with serving(channels(), async_redis, namespace, head_timeout=1.0) as edge:
        port = int(urlsplit(edge).port or 0)
        answered, held = await SlowClient(port, HEAD, every=0.1).run(give_up=10)
    assert answered == b""  # nothing to answer: the request never started
    assert 0.9 <= held < 3.0


async def test_a_kept_alive_connection_gets_the_same_deadline_for_its_next_request(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    async with serving(channels(), async_redis, namespace, head_timeout=1.0, keep_alive=30) as edge:
        port = int(urlsplit(edge).port or 0)
        first = b"GET /health HTTP/1.1\r\nHost: edge\r\n\r\n"
        answered, held = await SlowClient(port, first + HEAD, every=0.02).run(give_up=20)
    assert answered.startswith(b"HTTP/1.1 200")
    # the first request took ~0.7 s to dribble; the second head got 1 s from its response
    assert held < 3.0


async def test_a_prompt_client_on_a_kept_alive_connection_is_served_every_time(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    async with serving(channels(), async_redis, namespace, head_timeout=0.5) as edge:
        port = int(urlsplit(edge).port or 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(3):
            writer.write(b"GET /health HTTP/1.1\r\nHost: edge\r\n\r\n")
            status = await asyncio.wait_for(reader.readline(), 5)
            assert status.startswith(b"HTTP/1.1 200")
            await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), 5)
            await asyncio.sleep(0.3)  # under the deadline each time, 0.9 s in total
        writer.close()
        await writer.wait_closed()
