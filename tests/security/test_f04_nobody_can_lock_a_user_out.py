"""Finding 4: anyone could lock anyone out.

The tester's report: five wrong passwords from any address locked a user everywhere for 15
minutes; the per-address limit used the TCP peer, so behind a reverse proxy the whole contact
centre shared one counter; an administrator's password reset did not lift the lock.

Now a username gets a delay that doubles per failure but never exceeds a minute from anywhere,
the guesser's own address waits up to 15 minutes, an address is refused after 20 failures,
the address is the real client's when the request came through a configured trusted proxy,
and an administrator can unlock a user.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import redis.asyncio

from bot.errors import ConfigError
from bot.testing.browser import asgi_client
from bot.testing.console import FakeClock, MakeUser, token_in
from bot.web.accounts import LoginThrottle, backoff_seconds
from bot.web.app import AUDIT, ConsoleApp, Settings
from bot.web.proxies import parse_trusted_proxies

ATTACKER = "203.0.113.66"
OFFICE = "198.51.100.10"


@pytest.fixture
def throttle(async_redis: redis.asyncio.Redis, namespace: str, clock: FakeClock) -> LoginThrottle:
    return LoginThrottle(async_redis, namespace, clock=clock)


async def _guess(throttle: LoginThrottle, clock: FakeClock, times: int, ip: str) -> None:
    """Fail ``times`` sign-ins as fast as the throttle allows (waiting out each delay)."""
    for _ in range(times):
        clock.now += await throttle.wait_seconds("alice", ip)
        await throttle.failure("alice", ip)


def test_delays_double_and_are_capped() -> None:
    assert [backoff_seconds(n, 5, 60) for n in range(4, 13)] == [0, 1, 2, 4, 8, 16, 32, 60, 60]


async def test_guessing_from_elsewhere_delays_alice_by_at_most_a_minute(
    throttle: LoginThrottle, clock: FakeClock
) -> None:
    await _guess(throttle, clock, 15, ATTACKER)
    # the guesser's own address now waits long...
    assert await throttle.wait_seconds("alice", ATTACKER) > 5 * 60
    # ...but Alice at her desk waits at most a minute, then may try
    wait = await throttle.wait_seconds("alice", OFFICE)
    assert 0 < wait <= 60
    clock.now += wait
    assert await throttle.wait_seconds("alice", OFFICE) == 0


async def test_a_distributed_guesser_gets_one_guess_a_minute(
    throttle: LoginThrottle, clock: FakeClock
) -> None:
    start = clock.now
    for n in range(30):
        ip = f"203.0.113.{n}"  # a new address every time: no per-address limit applies
        clock.now += await throttle.wait_seconds("alice", ip)
        await throttle.failure("alice", ip)
    assert clock.now - start >= 60 * 15  # the last ~18 guesses each waited a minute


async def test_alice_signing_in_does_not_reset_the_guesser(
    throttle: LoginThrottle, clock: FakeClock
) -> None:
    await _guess(throttle, clock, 12, ATTACKER)
    clock.now += await throttle.wait_seconds("alice", OFFICE)
    await throttle.success("alice", OFFICE)
    assert await throttle.wait_seconds("alice", OFFICE) == 0
    assert await throttle.wait_seconds("alice", ATTACKER) > 60


async def test_an_address_is_refused_after_twenty_failures(
    throttle: LoginThrottle, clock: FakeClock
) -> None:
    for n in range(20):
        await throttle.failure(f"user{n}", ATTACKER)
    assert await throttle.wait_seconds("someone", ATTACKER) > 14 * 60
    assert await throttle.wait_seconds("someone", OFFICE) == 0
    clock.now += 15 * 60
    assert await throttle.wait_seconds("someone", ATTACKER) == 0


async def test_an_admin_can_unlock(throttle: LoginThrottle, clock: FakeClock) -> None:
    await _guess(throttle, clock, 12, ATTACKER)
    assert await throttle.locked("alice", OFFICE)
    assert await throttle.unlock("Alice")
    assert await throttle.failures("alice") == 0
    assert not await throttle.locked("alice", OFFICE)
    assert not await throttle.unlock("alice")  # nothing left to lift


# The address behind a trusted proxy is tested over HTTP in tests/web/test_accounts.py.


def test_bad_trusted_proxy_setting_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"COUNCIL_TRUSTED_PROXIES.*'proxy\.local'"):
        parse_trusted_proxies("10.0.0.0/8 proxy.local")
    assert parse_trusted_proxies("") == ()
    assert [str(n) for n in parse_trusted_proxies("2001:db8::/32")] == ["2001:db8::/32"]


# Over HTTP, behind the council's reverse proxy (the test client connects from 127.0.0.1)


@pytest.fixture
def console_settings(console_settings: Settings) -> Settings:
    return replace(console_settings, trusted_proxies=("127.0.0.1/32",))


async def test_guessing_alices_password_does_not_keep_her_out(
    console_app: ConsoleApp, make_user: MakeUser, clock: FakeClock
) -> None:
    alice, password = await make_user("agent", username="alice")
    async with asgi_client(console_app) as guesser, asgi_client(console_app) as desk:
        guesser.headers["X-Forwarded-For"] = ATTACKER
        desk.headers["X-Forwarded-For"] = OFFICE
        statuses = []
        for n in range(19):  # under the address limit; the guesser waits out every delay
            page = await guesser.get("/login")
            form = {"username": "alice", "password": f"guess{n}", "csrf_token": token_in(page.text)}
            response = await guesser.post("/login", data=form)
            statuses.append(response.status_code)
            clock.advance(int(response.headers.get("Retry-After", "0")))
        assert 401 in statuses
        # Alice, at her desk, waits at most a minute and is in
        page = await desk.get("/login")
        form = {"username": "alice", "password": password, "csrf_token": token_in(page.text)}
        first = await desk.post("/login", data=form)
        if first.status_code == 429:
            wait = int(first.headers["Retry-After"])
            assert wait <= 60
            clock.advance(wait)
            page = await desk.get("/login")
            form["csrf_token"] = token_in(page.text)
            first = await desk.post("/login", data=form)
        assert first.status_code == 200 and f"Welcome, {alice.username}" in first.text
    entries = await console_app[AUDIT].recent(actor="alice")
    assert {e.ip for e in entries if e.action == "login.failure"} == {ATTACKER}
    assert [e.ip for e in entries if e.action == "login.success"] == [OFFICE]
