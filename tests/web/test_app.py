import sys
import types
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import redis.asyncio
from httpx import AsyncClient
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from bot.errors import ConfigError, MissingSecretError
from bot.testing.browser import serve
from bot.web.app import (
    CSP,
    NAMESPACE,
    NAV,
    ConsoleApp,
    Settings,
    add_nav,
    create_app,
    render,
    require_role,
)


@pytest.fixture
def console_app(console_app: ConsoleApp) -> ConsoleApp:
    @require_role("editor")
    async def editor_page(request: Request) -> Response:
        return PlainTextResponse("editor page")

    @require_role("supervisor", "editor")
    async def report(request: Request) -> Response:
        return JSONResponse({"rows": []})

    async def public(request: Request) -> Response:
        return render(request, "error.html", {"title": "<b>T</b>", "message": "<script>x</script>"})

    console_app.add_route("/editor/x", editor_page)
    console_app.add_route("/api/report", report)
    console_app.add_route("/public", public)
    add_nav(console_app, "Editor", "/editor/x", "editor")
    add_nav(console_app, "Reports", "/reports/", "supervisor")
    return console_app


async def test_anonymous_page_redirects_to_login(client: AsyncClient) -> None:
    response = await client.get("/editor/x?a=1&b=2", follow_redirects=False)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/login?next=")
    page = await client.get(location)
    assert 'name="next" value="/editor/x?a=1&amp;b=2"' in page.text


async def test_anonymous_api_gets_401_json(client: AsyncClient) -> None:
    response = await client.get("/api/report", follow_redirects=False)
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized", "message": "Sign in first."}


async def test_wrong_role_is_403(login) -> None:
    agent = await login("agent")
    page = await agent.get("/editor/x", follow_redirects=False)
    assert page.status_code == 403
    assert "does not have access" in page.text
    api = await agent.get("/api/report")
    assert api.status_code == 403
    assert (api.json())["error"] == "Forbidden"
    admin_page = await agent.get("/admin/users")
    assert admin_page.status_code == 403


async def test_right_role_and_admin_pass(login) -> None:
    editor = await login("editor")
    assert (await editor.get("/editor/x")).text == "editor page"
    assert (await editor.get("/api/report")).status_code == 200
    admin = await login("admin")
    assert (await admin.get("/editor/x")).status_code == 200
    assert (await admin.get("/api/report")).status_code == 200


async def test_nav_shows_only_permitted_sections(login) -> None:
    editor = await login("editor")
    html = (await editor.get("/")).text
    assert 'href="/editor/x"' in html and 'href="/reports/"' not in html
    assert 'href="/admin/users"' not in html
    admin = await login("admin")
    html = (await admin.get("/")).text
    assert all(f'href="{p}"' in html for p in ("/editor/x", "/reports/", "/admin/users"))


async def test_login_redirects_to_next_but_only_on_this_site(
    client: AsyncClient, make_user
) -> None:
    user, password = await make_user("editor")
    for target, expected in [
        ("/editor/x", "/editor/x"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ]:
        page = await client.get("/login")
        token = client.cookies["cr_login_csrf"]
        response = await client.post(
            "/login",
            data={
                "username": user.username,
                "password": password,
                "next": target,
                "csrf_token": token,
            },
            follow_redirects=False,
        )
        assert response.status_code == 302, page.text
        assert response.headers["Location"] == expected
        client.cookies.clear()


async def test_security_headers(client: AsyncClient, login) -> None:
    for response in (
        await client.get("/login"),
        await client.get("/", follow_redirects=False),
        await client.get("/static/console.css"),
    ):
        assert response.headers["Content-Security-Policy"] == CSP
        assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    signed_in = await login("agent")
    home = await signed_in.get("/")
    assert home.headers["Cache-Control"] == "no-store"
    css = await signed_in.get("/static/console.css")
    assert css.status_code == 200 and "no-store" not in css.headers.get("Cache-Control", "")


async def test_templates_escape_and_have_no_inline_script(client: AsyncClient) -> None:
    html = (await client.get("/public")).text
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>" not in html
    assert "&lt;b&gt;T&lt;/b&gt;" in html
    login_page = (await client.get("/login")).text
    assert "<script" not in login_page and "style=" not in login_page


async def test_unknown_page_is_404_page(client: AsyncClient) -> None:
    response = await client.get("/nowhere")
    assert response.status_code == 404
    assert "<h1>Not Found</h1>" in response.text


def test_missing_section_module_is_skipped(
    async_redis: redis.asyncio.Redis, namespace: str, console_settings: Settings
) -> None:
    app = create_app(
        async_redis,
        namespace=namespace,
        settings=console_settings,
        sections=("bot.web.no_such_section",),
    )
    assert app[NAV] == []


def test_section_setup_is_called(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    console_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = types.ModuleType("bot.web.fake_section")
    module.__spec__ = types.SimpleNamespace(name="bot.web.fake_section")  # type: ignore[assignment]

    def setup(app: ConsoleApp) -> None:
        add_nav(app, "Fake", "/fake/")

    module.setup = setup  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bot.web.fake_section", module)
    app = create_app(
        async_redis,
        namespace=namespace,
        settings=console_settings,
        sections=("bot.web.fake_section",),
    )
    assert [item.label for item in app[NAV]] == ["Fake"]


def test_section_without_setup_stops_start_up(
    async_redis: redis.asyncio.Redis,
    namespace: str,
    console_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = types.ModuleType("bot.web.broken_section")
    module.__spec__ = types.SimpleNamespace(name="bot.web.broken_section")  # type: ignore[assignment]
    monkeypatch.setitem(sys.modules, "bot.web.broken_section", module)
    with pytest.raises(ConfigError) as info:
        create_app(
            async_redis,
            namespace=namespace,
            settings=console_settings,
            sections=("bot.web.broken_section",),
        )
    assert info.value.key == "setup"


def test_settings_from_env() -> None:
    with pytest.raises(MissingSecretError) as missing:
        Settings.from_env({})
    assert missing.value.variable == "COUNCIL_SECRET_KEY"
    with pytest.raises(ConfigError) as short:
        Settings.from_env({"COUNCIL_SECRET_KEY": "short"})
    assert short.value.key == "COUNCIL_SECRET_KEY"
    secret = "s" * 40
    assert Settings.from_env({"COUNCIL_SECRET_KEY": secret}).secure_cookies is True
    dev = Settings.from_env({"COUNCIL_SECRET_KEY": secret, "COUNCIL_COOKIE_SECURE": "0"})
    assert dev.secure_cookies is False and dev.secret_key == secret.encode()
    with pytest.raises(ConfigError) as bad:
        Settings.from_env({"COUNCIL_SECRET_KEY": secret, "COUNCIL_COOKIE_SECURE": "yes"})
    assert bad.value.key == "COUNCIL_COOKIE_SECURE"
    with pytest.raises(ConfigError):
        Settings.from_env({"COUNCIL_SECRET_KEY": secret, "COUNCIL_AUDIT_RETENTION_DAYS": "0"})
    days = Settings.from_env({"COUNCIL_SECRET_KEY": secret, "COUNCIL_AUDIT_RETENTION_DAYS": "30"})
    assert days.audit_retention_days == 30


async def test_forms_refuse_files_and_too_many_fields(login, csrf) -> None:
    agent = await login("agent")
    token = await csrf(agent)
    upload = await agent.post(
        "/logout", data={"csrf_token": token}, files={"file": ("a.txt", b"hello", "text/plain")}
    )
    assert upload.status_code == 400
    crowded = await agent.post(
        "/logout", data={"csrf_token": token, **{f"f{n}": "x" for n in range(300)}}
    )
    assert crowded.status_code == 400
    assert (await agent.get("/", follow_redirects=False)).status_code == 200  # still signed in


async def test_lifespans_run_while_the_server_runs(console_app: ConsoleApp) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def worker(app: ConsoleApp) -> AsyncIterator[None]:
        events.append(f"start {app[NAMESPACE] != ''}")
        yield
        events.append("stop")

    console_app.add_lifespan(worker)
    async with serve(console_app, lifespan=True) as server:
        assert events == ["start True"]
        async with httpx.AsyncClient() as http:
            assert (await http.get(server.make_url("/login"))).status_code == 200
    assert events == ["start True", "stop"]


def test_handlers_must_be_async(console_app: ConsoleApp) -> None:
    def blocking(request: Request) -> Response:
        return PlainTextResponse("x")

    with pytest.raises(ConfigError):
        console_app.add_route("/blocking", blocking)
