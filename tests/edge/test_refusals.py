"""A barrage of forged requests is logged as counts per reason, not as a line per request.

Under 733 forged requests a second every refusal used to be a log line of its own (each one
redacted and written): a flood for whoever reads the log and CPU the genuine residents share.
Now the first refusal of a kind is logged at once and its repeats as one line with the count
per interval; no count is lost (the last interval's is logged at shutdown).
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
import redis.asyncio

from bot.logs import Tally
from bot.testing.edge import serving

from .conftest import TELEGRAM_SECRET, channels, telegram_headers, telegram_update

_log = logging.getLogger("tests.edge.refusals")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == _log.name]


def test_repeats_within_an_interval_become_one_line_with_their_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    tally = Tally(_log, 10.0, clock=clock)
    with caplog.at_level(logging.INFO):
        for _ in range(5):
            tally.log(logging.WARNING, "%s: refused: %s", "telegram", "bad token")
        tally.log(logging.WARNING, "%s: refused: %s", "twitter", "bad signature")
        assert lines(caplog) == ["telegram: refused: bad token", "twitter: refused: bad signature"]
        clock.now += 10.0  # the next interval: the count, then the new line
        tally.log(logging.WARNING, "%s: refused: %s", "telegram", "bad token")
        assert lines(caplog)[2:] == [
            "telegram: refused: bad token (4 more in the last 10 s)",
            "telegram: refused: bad token",
        ]
        tally.log(logging.WARNING, "%s: refused: %s", "telegram", "bad token")
        tally.flush()  # shutdown: nothing counted is lost
        assert lines(caplog)[4:] == ["telegram: refused: bad token (1 more in the last 10 s)"]


def test_a_line_below_the_loggers_level_is_neither_logged_nor_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tally = Tally(_log, 10.0, clock=Clock())
    with caplog.at_level(logging.WARNING):
        tally.log(logging.INFO, "%s: not messages", "telegram")
        tally.flush()
    assert lines(caplog) == []


def test_beyond_max_kinds_lines_are_logged_one_by_one(caplog: pytest.LogCaptureFixture) -> None:
    tally = Tally(_log, 10.0, max_kinds=1, clock=Clock())
    with caplog.at_level(logging.INFO):
        for _ in range(2):
            tally.log(logging.WARNING, "refused: %s", "a")
            tally.log(logging.WARNING, "refused: %s", "b")
    assert lines(caplog) == ["refused: a", "refused: b", "refused: b"]


async def test_in_a_running_loop_the_count_is_logged_when_the_interval_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tally = Tally(_log, 0.05)
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            tally.log(logging.WARNING, "refused: %s", "a")
        async with asyncio.timeout(5):
            while len(lines(caplog)) < 2:
                await asyncio.sleep(0.01)
    assert lines(caplog) == ["refused: a", "refused: a (2 more in the last 0.05 s)"]


async def test_forged_requests_at_the_edge_are_one_line_and_a_count(
    async_redis: redis.asyncio.Redis, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        async with serving(channels(), async_redis, namespace, refusal_delay=0) as edge:
            async with aiohttp.ClientSession() as session:
                for n in range(20):
                    async with session.post(
                        f"{edge}/webhooks/telegram/webhook",
                        data=telegram_update(update_id=n),
                        headers=telegram_headers("forged"),
                    ) as answer:
                        assert answer.status == 403
            refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
            assert refused == ["telegram: refused: X-Telegram-Bot-Api-Secret-Token does not match"]
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused[1:] == [
        "telegram: refused: X-Telegram-Bot-Api-Secret-Token does not match"
        " (19 more in the last 10 s)"
    ]


async def test_refusals_answer_as_before_the_raw_layer(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    # webhook POSTs are answered before Starlette's routing: same statuses, type and headers
    async with (
        serving(channels(), async_redis, namespace, refusal_delay=0) as edge,
        aiohttp.ClientSession() as s,
    ):
        url = f"{edge}/webhooks/telegram/webhook"
        async with s.post(url, data=b"{}", headers=telegram_headers("forged")) as forged:
            assert (forged.status, await forged.text()) == (403, "forbidden")
            assert forged.headers["Content-Type"] == "text/plain; charset=utf-8"
            assert forged.headers["X-Content-Type-Options"] == "nosniff"
            assert forged.headers["Cache-Control"] == "no-store"
            assert "close" not in forged.headers.get("Connection", "")  # the body was read
        async with s.post(url, data=b"x" * 9000, headers=telegram_headers()) as large:
            assert (large.status, await large.text()) == (413, "payload too large")
            assert large.headers["Connection"] == "close"  # the body was not read
        async with s.post(url, data=telegram_update(), headers=telegram_headers()) as good:
            assert good.status == 200
        async with s.post(f"{edge}/webhooks/nope/webhook", data=b"{}") as unknown:
            assert (unknown.status, await unknown.text()) == (404, "unknown channel")


async def _post(session: aiohttp.ClientSession, url: str, secret: str, done: list[str]) -> int:
    async with session.post(url, data=telegram_update(), headers=telegram_headers(secret)) as a:
        done.append(secret)
        return a.status


async def test_a_refusal_is_answered_after_the_delay_and_a_genuine_post_is_not_held(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    # each connection of an attacker's gets a refusal per delay instead of one per 0.4 ms of
    # the edge's CPU; the genuine resident's webhook, sent after the forged one, is not held
    loop = asyncio.get_running_loop()
    done: list[str] = []
    async with (
        serving(channels(), async_redis, namespace, refusal_delay=2.0) as edge,
        aiohttp.ClientSession() as session,
    ):
        url = f"{edge}/webhooks/telegram/webhook"
        started = loop.time()
        forged = asyncio.create_task(_post(session, url, "forged", done))
        await asyncio.sleep(0.1)
        assert await _post(session, url, TELEGRAM_SECRET, done) == 200
        assert await forged == 403
        assert loop.time() - started >= 1.0  # at least half the delay
    assert done == [TELEGRAM_SECRET, "forged"]


async def test_beyond_the_held_refusals_a_refusal_is_answered_at_once(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    # a flood of connections cannot fill the connection limit with held refusals: a tenth of
    # it (here 1 of 10) is held, the next refusal is answered without waiting
    done: list[str] = []
    async with (
        serving(
            channels(), async_redis, namespace, refusal_delay=2.0, limit_concurrency=10
        ) as edge,
        aiohttp.ClientSession() as session,
    ):
        url = f"{edge}/webhooks/telegram/webhook"
        held = asyncio.create_task(_post(session, url, "held", done))
        await asyncio.sleep(0.2)
        assert await _post(session, url, "at-once", done) == 403
        assert done == ["at-once"]
        assert await held == 403
    assert done == ["at-once", "held"]
