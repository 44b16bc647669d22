"""Slow clients (slowloris) cannot hold the edge while residents' messages keep arriving.

Tester's finding (issue 9, "Bad input"): a client that sends its request a byte at a time,
its head or its body, must not hold a worker. Here 40 clients dribble request heads and 10
dribble bodies at the edge (its connection limit set to 60, so without the deadlines they
would soon fill it) while genuine signed Telegram updates keep arriving: every genuine one is
answered 200 within a second, every slow one is cut off at its deadline (the body ones with
a 408 and a reason).
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlsplit

import aiohttp
import redis.asyncio

from bot.channels.telegram import TelegramAdapter, TelegramBotAccount
from bot.testing.edge import channel, serving
from bot.testing.slow import SlowClient

SECRET = "slow_clients_secret"
HEAD = b"POST /webhooks/telegram/webhook HTTP/1.1\r\nHost: edge\r\nX-Pad: " + b"p" * 400
BODY_HEAD = (
    b"POST /webhooks/telegram/webhook HTTP/1.1\r\nHost: edge\r\nContent-Length: 400\r\n"
    b"X-Telegram-Bot-Api-Secret-Token: " + SECRET.encode() + b"\r\n\r\n"
)


async def test_slow_heads_and_bodies_are_cut_off_while_residents_are_answered(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    telegram = TelegramAdapter([TelegramBotAccount("councilbot", "1234:slow-token", SECRET)])
    async with serving(
        [channel("telegram", telegram)],
        async_redis,
        namespace,
        head_timeout=1.5,
        body_timeout=1.5,
        limit_concurrency=60,
    ) as edge:
        port = int(urlsplit(edge).port or 0)
        heads = [SlowClient(port, HEAD, every=0.05).run(give_up=15) for _ in range(40)]
        bodies = [
            SlowClient(port, b"{" * 400, every=0.05, first=BODY_HEAD).run(give_up=15)
            for _ in range(10)
        ]
        slow = asyncio.gather(*heads, *bodies)
        await asyncio.sleep(0.3)  # the slow clients are connected and dribbling

        answered: list[tuple[int, float]] = []
        async with aiohttp.ClientSession() as session:
            for update_id in range(1, 31):
                update = {
                    "update_id": update_id,
                    "message": {
                        "message_id": update_id,
                        "date": int(time.time()),
                        "chat": {"id": 42, "type": "private"},
                        "from": {"id": 42, "is_bot": False, "first_name": "R"},
                        "text": f"message {update_id}",
                    },
                }
                begun = time.monotonic()
                async with session.post(
                    f"{edge}/webhooks/telegram/webhook",
                    data=json.dumps(update),
                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                ) as answer:
                    answered.append((answer.status, time.monotonic() - begun))
                await asyncio.sleep(0.1)
        results = await slow

    assert [status for status, _ in answered] == [200] * 30
    assert max(seconds for _, seconds in answered) < 1.0
    assert await async_redis.xlen(f"{namespace}:inbox") == 30
    for received, held in results[:40]:
        assert received == b"" and held < 4.0  # closed at the head deadline
    for received, held in results[40:]:
        assert received.startswith(b"HTTP/1.1 408"), received[:40]
        assert received.endswith(b"request body too slow")
        assert held < 4.0
