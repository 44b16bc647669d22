"""Bad input at the public edge: oversized, malformed, unsigned and compressed requests.

Tester's finding (issue 9, "Bad input"): every such request must get its status with a short
reason (413 / 400 / 403 / 415), the body must never reach a log line, and no answer may carry
a stack trace. Requests are sent over a raw socket where a normal client would refuse to send
them (bad framing, a lying Content-Length).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp
import pytest
import redis.asyncio

from bot.channels.telegram import TelegramAdapter, TelegramBotAccount
from bot.testing.edge import channel, serving
from bot.testing.slow import SlowClient

SECRET = "bad_input_secret_token"
MARKER = "RESIDENT-PRIVATE-TEXT-7f3a"
LIMIT = 4096


@pytest.fixture
async def edge(async_redis: redis.asyncio.Redis, namespace: str) -> AsyncIterator[str]:
    telegram = TelegramAdapter([TelegramBotAccount("councilbot", "1234:abcdef-token", SECRET)])
    async with serving([channel("telegram", telegram, LIMIT)], async_redis, namespace) as url:
        yield url


def logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.getMessage()}\n{r.exc_text or ''}" for r in caplog.records)


async def raw(edge: str, request: bytes) -> bytes:
    """Send bytes as they are; return the whole answer."""
    port = int(urlsplit(edge).port or 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    async with asyncio.timeout(10):
        answer = await reader.read()
    writer.close()
    return answer


def assert_short_and_traceless(status: int, text: str, expected: int) -> None:
    assert status == expected
    assert text.strip(), "the refusal gives a reason"
    assert len(text) < 200
    assert "Traceback" not in text and 'File "' not in text


async def test_oversized_body_declared_in_content_length_is_413_unread(
    edge: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = ('{"text": "' + MARKER + "x" * LIMIT + '"}').encode()
    with caplog.at_level(logging.DEBUG):
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{edge}/webhooks/telegram/webhook",
                data=body,
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
            ) as answer,
        ):
            assert_short_and_traceless(answer.status, await answer.text(), 413)
    assert MARKER not in logged(caplog)
    assert "telegram" in logged(caplog)  # the refusal is logged, without the body


async def test_oversized_body_streamed_without_a_length_is_cut_at_the_limit(
    edge: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield MARKER.encode()
        for _ in range(64):  # 64 KiB, sixteen times the limit
            yield b"x" * 1024

    with caplog.at_level(logging.DEBUG):
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{edge}/webhooks/telegram/webhook",
                data=chunks(),
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
            ) as answer,
        ):
            assert_short_and_traceless(answer.status, await answer.text(), 413)
    assert MARKER not in logged(caplog)


async def test_a_content_length_that_lies_about_a_huge_body_is_413(edge: str) -> None:
    answer = await raw(
        edge,
        b"POST /webhooks/telegram/webhook HTTP/1.1\r\nHost: edge\r\n"
        b"Content-Length: 99999999999\r\n\r\n{}",
    )
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"payload too large" in answer


@pytest.mark.parametrize(
    "request_bytes",
    [
        # not a number
        b"POST /webhooks/telegram/webhook HTTP/1.1\r\nHost: edge\r\nContent-Length: abc\r\n\r\n",
        # header line without a colon
        b"POST /webhooks/telegram/webhook HTTP/1.1\r\nHost edge\r\n\r\n",
    ],
    ids=["content-length-not-a-number", "header-without-colon"],
)
async def test_malformed_http_is_400_with_a_reason(
    edge: str, request_bytes: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        answer = await raw(edge, request_bytes)
    head, _, text = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert text.strip() == b"Invalid HTTP request received."
    assert b"Traceback" not in answer
    assert "Content-Length" not in logged(caplog)


async def test_a_request_with_two_framings_is_400_not_guessed(edge: str) -> None:
    # the shape of request smuggling: a proxy in front may read the body differently
    answer = await raw(
        edge,
        b"POST /webhooks/telegram/webhook HTTP/1.1\r\nHost: edge\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 400")
    assert answer.endswith(b"ambiguous framing")


async def test_headers_over_16_kib_are_refused(edge: str) -> None:
    big = b"X-Big: " + b"a" * 40_000 + b"\r\n"
    head = b"POST /webhooks/telegram/webhook HTTP/1.1\r\nHost: edge\r\n"
    at_once = await raw(edge, head + big + b"Content-Length: 0\r\n\r\n")
    assert at_once.startswith(b"HTTP/1.1 431")
    assert at_once.endswith(b"request headers too large")
    port = int(urlsplit(edge).port or 0)
    in_pieces, _ = await SlowClient(port, head + big * 3, every=0.0, chunk=4096).run(give_up=10)
    # cut at 16 KiB although the header never ends (nothing buffers a head without bound)
    assert in_pieces.startswith(b"HTTP/1.1 431")
    assert in_pieces.endswith(b"request headers too large")


async def test_unsigned_or_forged_requests_are_403_and_never_parsed(
    edge: str, async_redis: redis.asyncio.Redis, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = ('{"update_id": 1, "message": {"text": "' + MARKER + '"}}').encode()
    with caplog.at_level(logging.DEBUG):
        async with aiohttp.ClientSession() as session:
            for headers in (
                {},  # unsigned
                {"X-Telegram-Bot-Api-Secret-Token": "forged"},
                {"X-Telegram-Bot-Api-Secret-Token": SECRET[:-1]},  # almost right
            ):
                async with session.post(
                    f"{edge}/webhooks/telegram/webhook", data=body, headers=headers
                ) as answer:
                    assert_short_and_traceless(answer.status, await answer.text(), 403)
            # malformed and unsigned: refused for the signature, the body never read
            async with session.post(
                f"{edge}/webhooks/telegram/webhook", data=b"\xff\xfe{{{" + MARKER.encode()
            ) as answer:
                assert_short_and_traceless(answer.status, await answer.text(), 403)
    assert MARKER not in logged(caplog)
    assert await async_redis.xlen(f"{namespace}:inbox") == 0


async def test_compressed_bodies_are_refused_unopened(edge: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{edge}/webhooks/telegram/webhook",
            data=b"\x1f\x8b" + b"\x00" * 64,  # a gzip header: could expand a thousandfold
            headers={"Content-Encoding": "gzip", "X-Telegram-Bot-Api-Secret-Token": SECRET},
        ) as answer,
    ):
        assert_short_and_traceless(answer.status, await answer.text(), 415)


async def test_unknown_paths_and_methods_get_short_answers(edge: str) -> None:
    async with aiohttp.ClientSession() as session:
        for method, path, status in (
            ("GET", "/webhooks/../../etc/passwd", 404),
            ("POST", "/webhooks/rest/webhook", 404),
            ("PUT", "/webhooks/telegram/webhook", 405),
            ("GET", "/docs", 404),
        ):
            async with session.request(method, f"{edge}{path}") as answer:
                assert_short_and_traceless(answer.status, await answer.text(), status)
