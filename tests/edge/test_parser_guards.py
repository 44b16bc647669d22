"""The server's own refusals (:mod:`bot.http_server`), over real sockets.

Requests are parsed by llhttp (httptools), which has no limit on a head's size and answers
every malformed request with the same 400: the guarded protocol cuts heads at 16 KiB however
they are made up (431), names two framings (400 ``ambiguous framing``), and logs a barrage of
malformed requests as one line, while ordinary requests (pipelined, or with a body larger than
the head limit in the same packet) are served as before.
"""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import urlsplit

import pytest
import redis.asyncio

from bot.channels.telegram import TelegramAdapter, TelegramBotAccount
from bot.http_server import MAX_HEAD_BYTES
from bot.testing.edge import channel, serving
from bot.testing.slow import SlowClient

from .conftest import TELEGRAM_SECRET, TELEGRAM_TOKEN, channels, telegram_update


async def exchange(edge: str, request: bytes) -> bytes:
    """Send bytes as they are in one write; return everything answered until the close."""
    answer, _ = await SlowClient(int(urlsplit(edge).port or 0), b"", first=request).run(10)
    return answer


async def test_a_request_target_over_16_kib_is_431(edge: str) -> None:
    target = b"/health?pad=" + b"a" * MAX_HEAD_BYTES
    answer = await exchange(edge, b"GET " + target + b" HTTP/1.1\r\nHost: edge\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431")
    assert answer.endswith(b"request headers too large")


async def test_many_small_headers_over_16_kib_in_one_packet_are_431(edge: str) -> None:
    headers = b"".join(b"X-Pad-%d: %s\r\n" % (n, b"p" * 40) for n in range(400))  # ~20 KiB
    answer = await exchange(edge, b"GET /health HTTP/1.1\r\nHost: edge\r\n" + headers + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431")


async def test_a_head_just_under_the_limit_is_served(edge: str) -> None:
    start = b"GET /health HTTP/1.1\r\nHost: edge\r\nConnection: close\r\nX-Pad: "
    pad = b"p" * (MAX_HEAD_BYTES - len(start) - 100)
    answer = await exchange(edge, start + pad + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
    ],
    ids=["length-first", "chunked-first"],
)
async def test_two_framings_in_either_order_are_400_ambiguous(edge: str, framing: bytes) -> None:
    answer = await exchange(
        edge,
        b"POST /webhooks/telegram/webhook HTTP/1.1\r\nHost: edge\r\n" + framing + b"\r\n0\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 400")
    assert answer.endswith(b"ambiguous framing")


async def test_pipelined_requests_are_answered_in_order(edge: str) -> None:
    first = b"GET /health HTTP/1.1\r\nHost: edge\r\n\r\n"
    second = b"GET /nowhere HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n"
    answer = await exchange(edge, first + second)
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.count(b"HTTP/1.1 ") == 2
    assert b"HTTP/1.1 404" in answer.split(b'{"status":"ok"}', 1)[1]


async def test_a_body_larger_than_the_head_limit_in_the_same_packet_is_served(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    # the head limit counts the head, not a body that arrives with it
    telegram = TelegramAdapter([TelegramBotAccount("councilbot", TELEGRAM_TOKEN, TELEGRAM_SECRET)])
    body = telegram_update("x" * (2 * MAX_HEAD_BYTES))
    update = json.loads(body)
    assert len(body) > 2 * MAX_HEAD_BYTES and update["message"]["text"]
    async with serving([channel("telegram", telegram, 65536)], async_redis, namespace) as edge:
        head = (
            b"POST /webhooks/telegram/webhook HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nX-Telegram-Bot-Api-Secret-Token: "
            + TELEGRAM_SECRET.encode()
            + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        answer = await exchange(edge, head + body)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:60]
    assert await async_redis.xlen(f"{namespace}:inbox") == 1


async def test_a_barrage_of_malformed_requests_is_one_log_line(
    edge: str, caplog: pytest.LogCaptureFixture
) -> None:
    malformed = b"POST /webhooks/telegram/webhook HTTP/1.1\r\nHost edge\r\n\r\n"
    with caplog.at_level(logging.INFO, logger="bot.http_server"):
        answers = await asyncio.gather(*(exchange(edge, malformed) for _ in range(30)))
    assert all(answer.startswith(b"HTTP/1.1 400") for answer in answers)
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.http_server"]
    assert lines == ["refused: malformed request"]


async def test_upgrade_requests_are_served_as_plain_http_and_logged_once(
    edge: str, caplog: pytest.LogCaptureFixture
) -> None:
    upgrade = b"GET /health HTTP/1.1\r\nHost: edge\r\nConnection: Upgrade, close\r\nUpgrade: "
    with caplog.at_level(logging.INFO):
        answers = [
            await exchange(edge, upgrade + kind + b"\r\n\r\n")
            for kind in (b"websocket", b"h2c") * 5
        ]
    assert all(answer.startswith(b"HTTP/1.1 200") for answer in answers)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == []  # uvicorn's own: two warnings a request
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.http_server"]
    assert lines == ["upgrade not supported: served as plain HTTP"]


async def test_slow_clients_from_one_address_are_one_log_line(
    async_redis: redis.asyncio.Redis, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    head = b"POST /webhooks/telegram/webhook HTTP/1.1\r\nHost: edge\r\nX-Pad: " + b"p" * 200
    async with serving(channels(), async_redis, namespace, head_timeout=0.5) as edge:
        port = int(urlsplit(edge).port or 0)
        with caplog.at_level(logging.INFO, logger="bot.http_server"):
            cut = await asyncio.gather(
                *(SlowClient(port, head, every=0.05).run(give_up=5) for _ in range(10))
            )
    assert all(received == b"" and held < 2.0 for received, held in cut)
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.http_server"]
    assert lines == ["closed a connection from 127.0.0.1: head too slow"]
