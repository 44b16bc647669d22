"""Fixtures for every web console test (foundation, editor, agent, reports).

- ``clock``: fake clock (``clock.advance(seconds)``) used by sessions, audit and accounts.
- ``console_sections``: section modules to load; override it in your test module, e.g.
  ``@pytest.fixture def console_sections(): return ("bot.web.editor",)``.
- ``console_settings`` / ``console_app``: the app against the test Redis namespace.
- ``console_server``: the app served on an ephemeral loopback port (``.make_url(path)``).
- ``make_user(*roles, teams=(), username=None) -> (User, password)``.
- ``client``: an anonymous aiohttp client of the server.
- ``sign_in(client, username, password) -> ClientResponse`` (follows the redirect).
- ``login(*roles, teams=(), username=None) -> TestClient``: a new signed-in client.
- ``csrf(client) -> str``: the CSRF token of a client's session (for posts and fetch headers).
- ``browser`` / ``page``: Playwright (async) in headless Debian chromium; mark tests
  ``@pytest.mark.browser``.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher
from playwright.async_api import Browser, Page

from bot.testing.browser import chromium
from bot.web.accounts import User
from bot.web.app import ACCOUNTS, Settings, create_app

# Cheap argon2 parameters keep the suite fast; production uses PasswordHasher() defaults.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
_TOKEN = re.compile(r'name="(?:csrf_token|csrf-token)" (?:value|content)="([^"]+)"')

MakeUser = Callable[..., Awaitable[tuple[User, str]]]
Login = Callable[..., Awaitable[TestClient]]


class FakeClock:
    """A clock that moves only when told."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def console_sections() -> tuple[str, ...]:
    return ("bot.web.admin",)


@pytest.fixture
def console_settings(clock: FakeClock) -> Settings:
    return Settings(
        secret_key=secrets.token_bytes(32),
        secure_cookies=False,
        clock=clock,
        password_hasher=FAST_HASHER,
    )


@pytest.fixture
def console_app(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    console_settings: Settings,
    console_sections: tuple[str, ...],
) -> web.Application:
    return create_app(
        async_redis, namespace=namespace, settings=console_settings, sections=console_sections
    )


@pytest.fixture
async def console_server(console_app: web.Application) -> AsyncIterator[TestServer]:
    server = TestServer(console_app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def _new_client(server: TestServer) -> TestClient:
    # Close with ``client.close()``: it releases responses a test did not read, whose pooled
    # connections otherwise warn "Unclosed connection" when collected during a later test.
    client = TestClient(server)
    await client.start_server()
    return client


@pytest.fixture
async def client(console_server: TestServer) -> AsyncIterator[TestClient]:
    anonymous = await _new_client(console_server)
    yield anonymous
    await anonymous.close()


@pytest.fixture
def make_user(console_app: web.Application) -> MakeUser:
    async def make(
        *roles: str, teams: tuple[str, ...] = (), username: str | None = None
    ) -> tuple[User, str]:
        password = secrets.token_urlsafe(16)
        name = username or f"user{uuid.uuid4().hex[:8]}"
        user = await console_app[ACCOUNTS].create(name, password, roles or ("agent",), teams)
        return user, password

    return make


def token_in(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


@pytest.fixture
def csrf() -> Callable[[TestClient], Awaitable[str]]:
    async def token(client: TestClient) -> str:
        response = await client.get("/login")
        return token_in(await response.text())

    return token


@pytest.fixture
def sign_in() -> Callable[[TestClient, str, str], Awaitable[ClientResponse]]:
    async def post(client: TestClient, username: str, password: str) -> ClientResponse:
        page = await client.get("/login")
        form = {
            "username": username,
            "password": password,
            "csrf_token": token_in(await page.text()),
        }
        return await client.post("/login", data=form)

    return post


@pytest.fixture
async def login(
    console_server: TestServer,
    make_user: MakeUser,
    sign_in: Callable[[TestClient, str, str], Awaitable[ClientResponse]],
) -> AsyncIterator[Login]:
    clients: list[TestClient] = []

    async def log_in(
        *roles: str, teams: tuple[str, ...] = (), username: str | None = None
    ) -> TestClient:
        user, password = await make_user(*roles, teams=teams, username=username)
        signed_in = await _new_client(console_server)
        clients.append(signed_in)
        response = await sign_in(signed_in, user.username, password)
        assert response.status == 200, await response.text()
        return signed_in

    yield log_in
    for each in clients:
        await each.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    tab = await context.new_page()
    yield tab
    await context.close()
