import pytest
from httpx import AsyncClient
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.web.app import ConsoleApp, require_role
from bot.web.csrf import REFUSAL, tokens_match


@pytest.fixture
def console_app(console_app: ConsoleApp) -> ConsoleApp:
    @require_role("agent")
    async def echo(request: Request) -> Response:
        return JSONResponse({"ok": True, "method": request.method})

    for method in ("POST", "PUT", "PATCH", "DELETE", "GET"):
        console_app.add_route("/api/echo", echo, methods=[method])
        console_app.add_route("/agent/echo", echo, methods=[method])
    return console_app


def test_tokens_match() -> None:
    assert tokens_match("abc", "abc")
    assert not tokens_match("abc", "abd")
    assert not tokens_match("abc", None)
    assert not tokens_match(None, None)
    assert not tokens_match("", "")
    assert not tokens_match("abc", "abcd")


async def test_every_form_carries_the_session_token(login, csrf) -> None:
    client = await login("admin")
    token = await csrf(client)
    html = (await client.get("/admin/users")).text
    assert html.count(f'name="csrf_token" value="{token}"') == 2  # sign-out and add-user forms
    assert f'<meta name="csrf-token" content="{token}">' in html


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_unsafe_methods_need_the_token(login, csrf, method: str) -> None:
    client = await login("agent")
    token = await csrf(client)
    missing = await client.request(method, "/agent/echo", data={"x": "1"})
    assert missing.status_code == 403
    assert REFUSAL in missing.text
    assert "<h1>Forbidden</h1>" in missing.text
    wrong = await client.request(method, "/agent/echo", data={"csrf_token": token[:-1] + "x"})
    assert wrong.status_code == 403
    right = await client.request(method, "/agent/echo", data={"csrf_token": token})
    assert right.status_code == 200
    assert (right.json())["method"] == method


async def test_header_token_for_fetch(login, csrf) -> None:
    client = await login("agent")
    token = await csrf(client)
    ok = await client.post("/api/echo", json={"a": 1}, headers={"X-CSRF-Token": token})
    assert ok.status_code == 200
    refused = await client.post("/api/echo", json={"a": 1}, headers={"X-CSRF-Token": "nope"})
    assert refused.status_code == 403
    assert (refused.json())["error"] == "Forbidden"
    no_header = await client.post("/api/echo", json={"csrf_token": token})
    assert no_header.status_code == 403  # JSON bodies must use the header


async def test_get_needs_no_token(login) -> None:
    client = await login("agent")
    assert (await client.get("/agent/echo")).status_code == 200


async def test_token_of_another_session_refused(login, csrf) -> None:
    alice = await login("agent")
    bob = await login("agent")
    response = await alice.post("/agent/echo", data={"csrf_token": await csrf(bob)})
    assert response.status_code == 403


async def test_login_form_needs_its_cookie_token(client: AsyncClient, make_user) -> None:
    user, password = await make_user("agent")
    # A cross-site form post: no sign-in cookie, a made-up token.
    forged = await client.post(
        "/login", data={"username": user.username, "password": password, "csrf_token": "x"}
    )
    assert forged.status_code == 403
    page = await client.get("/login")
    token = client.cookies["cr_login_csrf"]
    assert f'value="{token}"' in page.text
    again = await client.get("/login")
    assert "cr_login_csrf" not in again.cookies  # the browser's token is kept, not replaced
    assert f'value="{token}"' in again.text
    signed_in = await client.post(
        "/login", data={"username": user.username, "password": password, "csrf_token": token}
    )
    assert signed_in.status_code == 200


async def test_logout_refused_without_token(login) -> None:
    client = await login("agent")
    response = await client.post("/logout", follow_redirects=False)
    assert response.status_code == 403
    assert (await client.get("/", follow_redirects=False)).status_code == 200  # still signed in
