"""Slow clients (slowloris) cannot hold the web console while staff keep working.

The console had no deadline for a request's head (uvicorn has none of its own), so it relied
on the council's reverse proxy to buffer requests. It now runs on the edge's hardened server
(:mod:`bot.http_server`): here 40 clients dribble request heads at the console (its connection
limit set to 60, so without the deadline they would soon fill it) while a member of staff
keeps loading the sign-in page: every page is served within a second, every slow client is
cut off at its deadline, and an oversized head is refused. Slow form bodies get 408 at theirs.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import uvicorn

from bot.testing.slow import SlowClient
from bot.web.__main__ import console_config
from bot.web.app import ConsoleApp

HEAD = b"GET /login HTTP/1.1\r\nHost: console\r\nX-Pad: " + b"p" * 400


@asynccontextmanager
async def running(app: ConsoleApp, **limits: Any) -> AsyncIterator[int]:
    """The console on ``python -m bot.web``'s server configuration; yields its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])
    config = console_config(app, "127.0.0.1", port, lifespan="off", **limits)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve([listener]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        await task
        listener.close()


async def test_slow_heads_are_cut_off_while_staff_are_served(console_app: ConsoleApp) -> None:
    async with running(console_app, head_timeout=1.5, limit_concurrency=60) as port:
        slow = asyncio.gather(
            *(SlowClient(port, HEAD, every=0.05).run(give_up=15) for _ in range(40))
        )
        await asyncio.sleep(0.3)  # the slow clients are connected and dribbling

        answered: list[tuple[int, float]] = []
        async with aiohttp.ClientSession() as session:
            for _ in range(20):
                begun = time.monotonic()
                async with session.get(f"http://127.0.0.1:{port}/login") as page:
                    await page.read()
                    answered.append((page.status, time.monotonic() - begun))
                await asyncio.sleep(0.1)
        results = await slow

    assert [status for status, _ in answered] == [200] * 20
    assert max(seconds for _, seconds in answered) < 1.0
    for received, held in results:
        assert received == b"" and held < 4.0  # closed at the head deadline


async def test_an_oversized_head_is_refused(console_app: ConsoleApp) -> None:
    head = b"GET /login HTTP/1.1\r\nHost: console\r\nX-Pad: " + b"p" * 60_000
    async with running(console_app) as port:
        answer, held = await SlowClient(port, head, every=0.0, chunk=4096).run(give_up=10)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:40]  # cut at 16 KiB, not buffered
    assert answer.endswith(b"request headers too large")
    assert held < 10


async def test_slow_bodies_get_408_while_staff_are_served(console_app: ConsoleApp) -> None:
    # a sign-in form posted a byte at a time: the head is prompt, the body never ends
    head = (
        b"POST /login HTTP/1.1\r\nHost: console\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 400\r\n\r\n"
    )
    async with running(console_app, body_timeout=1.5, limit_concurrency=60) as port:
        slow = asyncio.gather(
            *(
                SlowClient(port, b"u" * 400, every=0.05, first=head).run(give_up=15)
                for _ in range(30)
            )
        )
        await asyncio.sleep(0.3)
        async with aiohttp.ClientSession() as session:
            for _ in range(10):
                begun = time.monotonic()
                async with session.get(f"http://127.0.0.1:{port}/login") as page:
                    await page.read()
                    assert page.status == 200
                assert time.monotonic() - begun < 1.0
                await asyncio.sleep(0.1)
        results = await slow

    for received, held in results:
        assert received.startswith(b"HTTP/1.1 408"), received[:40]
        assert received.endswith(b"request body too slow")
        assert held < 4.0
