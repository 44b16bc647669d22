import secrets
from http.cookies import SimpleCookie

import pytest
import redis.asyncio
from httpx import AsyncClient

from bot.testing.browser import asgi_client
from bot.web.app import ACCOUNTS, SESSIONS
from bot.web.sessions import SESSION_COOKIE, SessionStore


@pytest.fixture
def store(async_redis: redis.asyncio.Redis, namespace: str, clock) -> SessionStore:
    return SessionStore(
        async_redis,
        namespace,
        secrets.token_bytes(32),
        idle_seconds=1800,
        absolute_seconds=12 * 3600,
        clock=clock,
    )


async def test_create_and_load(store: SessionStore, clock) -> None:
    session = await store.create("alice")
    assert len(session.sid) >= 43 and len(session.csrf_token) >= 43
    clock.advance(60)
    loaded = await store.load(session.sid)
    assert loaded is not None
    assert (loaded.username, loaded.csrf_token) == ("alice", session.csrf_token)
    assert loaded.last_seen == clock.now
    assert await store.load("not-a-session") is None
    assert await store.load("") is None


async def test_redis_holds_no_usable_session_id(
    store: SessionStore, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    session = await store.create("alice")
    keys = [k async for k in async_redis.scan_iter(match=f"{namespace}:*")]
    assert keys and not any(session.sid in k for k in keys)
    for k in keys:
        if await async_redis.type(k) == "hash":
            assert session.sid not in (await async_redis.hgetall(k)).values()


async def test_idle_expiry(store: SessionStore, clock) -> None:
    session = await store.create("alice")
    clock.advance(1799)
    assert await store.load(session.sid) is not None  # use resets the idle timer
    clock.advance(1799)
    assert await store.load(session.sid) is not None
    clock.advance(1800)
    assert await store.load(session.sid) is None
    clock.advance(-3600)  # gone for good, not just judged expired
    assert await store.load(session.sid) is None


async def test_absolute_expiry(store: SessionStore, clock) -> None:
    session = await store.create("alice")
    for _ in range(12 * 2 - 1):
        clock.advance(1800 - 1)
        assert await store.load(session.sid) is not None
    clock.advance(1800)
    assert await store.load(session.sid) is None


async def test_redis_ttl_follows_expiry(
    store: SessionStore, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    await store.create("alice")
    [session_key] = [k async for k in async_redis.scan_iter(match=f"{namespace}:session:*")]
    assert 1790 <= await async_redis.ttl(session_key) <= 1801


async def test_delete_and_delete_user(store: SessionStore) -> None:
    first = await store.create("alice")
    second = await store.create("alice")
    other = await store.create("bob")
    await store.delete(first.sid)
    assert await store.load(first.sid) is None
    assert await store.load(second.sid) is not None
    assert await store.delete_user("alice") == 1
    assert await store.load(second.sid) is None
    assert await store.load(other.sid) is not None


async def test_cookie_flags(client: AsyncClient, make_user, sign_in) -> None:
    user, password = await make_user("agent")
    page = await client.get("/login")
    token = page.cookies["cr_login_csrf"]
    response = await client.post(
        "/login",
        data={"username": user.username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 302
    raw = [v for v in response.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE + "=")]
    assert len(raw) == 1
    cookie = SimpleCookie(raw[0])[SESSION_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"].lower() == "lax"
    assert not cookie["secure"]  # the test settings are local development ones
    assert cookie["path"] == "/"


async def test_secure_flag_when_configured(
    async_redis: redis.asyncio.Redis, namespace: str, console_settings, make_user
) -> None:
    from dataclasses import replace

    from bot.web.app import create_app

    app = create_app(
        async_redis,
        namespace=namespace,
        settings=replace(console_settings, secure_cookies=True),
        sections=(),
    )
    user, password = await make_user("agent")
    async with asgi_client(app) as client:
        page = await client.get("/login")
        login_cookie = SimpleCookie(page.headers["Set-Cookie"])["cr_login_csrf"]
        assert login_cookie["secure"] is True and login_cookie["samesite"].lower() == "strict"
        response = await client.post(
            "/login",
            data={
                "username": user.username,
                "password": password,
                "csrf_token": login_cookie.value,
            },
            # The client keeps Secure cookies for HTTPS, so send it by hand over loopback HTTP.
            headers={"Cookie": f"cr_login_csrf={login_cookie.value}"},
            follow_redirects=False,
        )
        raw = [v for v in response.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE)]
        assert SimpleCookie(raw[0])[SESSION_COOKIE]["secure"] is True
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_idle_session_over_http(login, clock) -> None:
    client = await login("agent")
    assert (await client.get("/", follow_redirects=False)).status_code == 200
    clock.advance(29 * 60)
    assert (await client.get("/", follow_redirects=False)).status_code == 200
    clock.advance(30 * 60)
    expired = await client.get("/", follow_redirects=False)
    assert expired.status_code == 302
    assert expired.headers["Location"] == "/login?next=/"


async def test_logout_deletes_session(
    login, csrf, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    client = await login("agent")
    sid = client.cookies[SESSION_COOKIE]
    assert [k async for k in async_redis.scan_iter(match=f"{namespace}:session:*")]
    token = await csrf(client)
    response = await client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert [k async for k in async_redis.scan_iter(match=f"{namespace}:session:*")] == []
    # Replaying the old cookie does not sign anyone in.
    client.cookies.set(SESSION_COOKIE, sid)
    assert (await client.get("/", follow_redirects=False)).status_code == 302


async def test_new_session_on_each_login(client: AsyncClient, make_user, sign_in) -> None:
    user, password = await make_user("agent")
    await sign_in(client, user.username, password)
    first = client.cookies[SESSION_COOKIE]
    await sign_in(client, user.username, password)
    second = client.cookies[SESSION_COOKIE]
    assert first != second


async def test_disabled_user_loses_session(login, console_app) -> None:
    client = await login("agent", username="carol")
    await console_app[ACCOUNTS].set_disabled("carol", True)
    assert (await client.get("/", follow_redirects=False)).status_code == 302
    await console_app[ACCOUNTS].set_disabled("carol", False)
    assert (await client.get("/", follow_redirects=False)).status_code == 302  # session is gone
    assert await console_app[SESSIONS].delete_user("carol") == 0


async def test_expired_cookie_is_removed(login, clock) -> None:
    client = await login("agent")
    clock.advance(31 * 60)
    response = await client.get("/", follow_redirects=False)
    assert response.status_code == 302
    removed = [v for v in response.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE)]
    assert removed and "Max-Age=0" in removed[0]


async def test_expired_cookie_is_removed_on_error_pages_too(login, clock) -> None:
    client = await login("agent")
    clock.advance(31 * 60)
    response = await client.post("/logout", data={"csrf_token": "stale"})
    assert response.status_code == 403
    removed = [v for v in response.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE)]
    assert removed and "Max-Age=0" in removed[0]
