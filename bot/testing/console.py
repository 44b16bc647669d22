"""Pytest fixtures for web console tests (``tests/web``, ``tests/security``).

A ``conftest.py`` re-exports them: ``from bot.testing.console import *  # noqa: F403``.

- ``clock``: fake clock (``clock.advance(seconds)``) used by sessions, audit and accounts.
- ``console_sections``: section modules to load; override it in your test module, e.g.
  ``@pytest.fixture def console_sections(): return ("bot.web.editor",)``.
- ``console_settings`` / ``console_app``: the app (a ``ConsoleApp``) against the test Redis
  namespace; to add test-only routes override it and call ``console_app.add_route(...)``.
- ``console_server``: the app served by uvicorn on an ephemeral loopback port
  (``.make_url(path)``), for the browser.
- ``make_user(*roles, teams=(), username=None) -> (User, password)``.
- ``client``: an anonymous ``httpx.AsyncClient`` calling the app in-process (ASGI; the client
  address is 127.0.0.1; redirects are followed unless ``follow_redirects=False``).
- ``sign_in(client, username, password) -> httpx.Response`` (follows the redirect).
- ``login(*roles, teams=(), username=None) -> httpx.AsyncClient``: a new signed-in client.
- ``csrf(client) -> str``: the CSRF token of a client's session (for posts and fetch headers).
- ``browser`` / ``page``: Playwright (async) in headless Debian chromium; mark tests
  ``@pytest.mark.browser``. ``await fill_sign_in(page, username, password)`` (a function, not
  a fixture) signs in on the form the page shows; ``await sign_in_as(page, console_server,
  make_user, path, *roles)`` opens a page as a new user.
"""

from __future__ import annotations

__all__ = [
    "FAST_HASHER",
    "Csrf",
    "FakeClock",
    "Login",
    "MakeUser",
    "browser",
    "client",
    "clock",
    "console_app",
    "console_sections",
    "console_server",
    "console_settings",
    "csrf",
    "fill_sign_in",
    "login",
    "make_user",
    "page",
    "sign_in",
    "sign_in_as",
    "token_in",
]

import re
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import redis.asyncio
from argon2 import PasswordHasher
from playwright.async_api import Browser, Page

from bot.testing.browser import LocalServer, asgi_client, chromium, serve
from bot.web.accounts import User
from bot.web.app import ACCOUNTS, ConsoleApp, Settings, create_app

# Cheap argon2 parameters keep the suite fast; production uses PasswordHasher() defaults.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
_TOKEN = re.compile(r'name="(?:csrf_token|csrf-token)" (?:value|content)="([^"]+)"')

MakeUser = Callable[..., Awaitable[tuple[User, str]]]
"""What the ``make_user`` fixture returns: ``await make_user("agent")`` is ``(user, password)``."""
Login = Callable[..., Awaitable[httpx.AsyncClient]]
"""What the ``login`` fixture returns: ``await login("agent")`` is a signed-in client."""
Csrf = Callable[[httpx.AsyncClient], Awaitable[str]]
"""What the ``csrf`` fixture returns: ``await csrf(client)`` is the session's CSRF token."""


class FakeClock:
    """A clock that moves only when told."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        """The current fake time (epoch seconds)."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock on (or back, with a negative number)."""
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock for sessions, audit and accounts."""
    return FakeClock()


@pytest.fixture
def console_sections() -> tuple[str, ...]:
    """Section modules the test app loads (override per test module)."""
    return ("bot.web.admin",)


@pytest.fixture
def console_settings(clock: FakeClock) -> Settings:
    """Test settings: cheap argon2, cookies without Secure, the fake clock."""
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
) -> ConsoleApp:
    """The console app against the test Redis namespace."""
    return create_app(
        async_redis, namespace=namespace, settings=console_settings, sections=console_sections
    )


@pytest.fixture
async def console_server(console_app: ConsoleApp) -> AsyncIterator[LocalServer]:
    """The app under uvicorn on an ephemeral loopback port (for the browser)."""
    async with serve(console_app) as server:
        yield server


@pytest.fixture
async def client(console_app: ConsoleApp) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous in-process client of the app."""
    async with asgi_client(console_app) as anonymous:
        yield anonymous


@pytest.fixture
def make_user(console_app: ConsoleApp) -> MakeUser:
    """Make users with roles and teams; each call returns (user, password)."""

    async def make(
        *roles: str, teams: tuple[str, ...] = (), username: str | None = None
    ) -> tuple[User, str]:
        password = secrets.token_urlsafe(16)
        name = username or f"user{uuid.uuid4().hex[:8]}"
        user = await console_app[ACCOUNTS].create(name, password, roles or ("agent",), teams)
        return user, password

    return make


def token_in(html: str) -> str:
    """The CSRF token written in a page (form field or meta tag)."""
    found = _TOKEN.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


@pytest.fixture
def csrf() -> Csrf:
    """Read the CSRF token of a client's session (or of its sign-in cookie)."""

    async def token(client: httpx.AsyncClient) -> str:
        response = await client.get("/login")
        return token_in(response.text)

    return token


@pytest.fixture
def sign_in() -> Callable[[httpx.AsyncClient, str, str], Awaitable[httpx.Response]]:
    """Sign a client in like a browser (returns the response after the redirect)."""

    async def post(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
        page = await client.get("/login")
        form = {"username": username, "password": password, "csrf_token": token_in(page.text)}
        return await client.post("/login", data=form)

    return post


@pytest.fixture
async def login(
    console_app: ConsoleApp,
    make_user: MakeUser,
    sign_in: Callable[[httpx.AsyncClient, str, str], Awaitable[httpx.Response]],
) -> AsyncIterator[Login]:
    """Make a new user with roles and teams, and return a new client signed in as them."""
    clients: list[httpx.AsyncClient] = []

    async def log_in(
        *roles: str, teams: tuple[str, ...] = (), username: str | None = None
    ) -> httpx.AsyncClient:
        user, password = await make_user(*roles, teams=teams, username=username)
        signed_in = asgi_client(console_app)
        clients.append(signed_in)
        response = await sign_in(signed_in, user.username, password)
        assert response.status_code == 200, response.text
        return signed_in

    yield log_in
    for each in clients:
        await each.aclose()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium."""
    async with chromium() as launched:
        yield launched


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A tab in a fresh browser context (its own cookies)."""
    context = await browser.new_context()
    tab = await context.new_page()
    yield tab
    await context.close()


async def fill_sign_in(
    page: Page, username: str, password: str, *, by_keyboard: bool = False
) -> None:
    """Sign in on the console's sign-in form that ``page`` shows, as a person does.

    Args:
        page: A tab showing the sign-in form.
        username: Typed into the field labelled "Username".
        password: Typed into the field labelled "Password".
        by_keyboard: Send the form with the Enter key rather than the "Sign in" button.
    """
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    if by_keyboard:
        await page.keyboard.press("Enter")
    else:
        await page.get_by_role("button", name="Sign in").click()


async def sign_in_as(
    page: Page,
    server: LocalServer,
    make_user: MakeUser,
    path: str,
    *roles: str,
    teams: tuple[str, ...] = ("customer_services",),
) -> None:
    """Open ``path`` as a new user with ``roles`` (default: an agent), sign in, wait to be back.

    Args:
        page: A tab (the ``page`` fixture).
        server: The console served for the browser (``console_server``).
        make_user: The ``make_user`` fixture.
        path: The console page to open; the sign-in form comes first, then this page.
        *roles: The user's roles (none given: ``agent``).
        teams: The user's teams.
    """
    user, password = await make_user(*(roles or ("agent",)), teams=teams)
    await page.goto(server.make_url(path))
    await fill_sign_in(page, user.username, password)
    await page.wait_for_url(server.make_url(path))
