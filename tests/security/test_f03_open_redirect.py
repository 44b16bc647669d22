"""Finding 3: an open redirect after sign-in.

The tester's report: ``/login?next=/%09/evil.example/x`` (also ``%0A``) sent a user who signed
in to another site. The value starts with one slash, so the old check passed it, and browsers
drop tabs and newlines from URLs, so ``/\\t/evil.example/x`` became ``//evil.example/x``.

Now only a same-site path is followed (no scheme, no host, no control characters, spaces or
backslashes); anything else signs in to the home page. Cases from the tester and from the
WHATWG URL standard's list of characters browsers strip (tab, LF, CR) and treat as a slash
(backslash); encoded forms are decoded once by the query string, as a browser would send them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

import httpx
import pytest

from bot.testing.console import MakeUser, token_in

HOSTILE = [
    "/\t/evil.example/x",
    "/\n/evil.example/x",
    "/\r/evil.example/x",
    "\t//evil.example/x",
    "//evil.example/x",
    "///evil.example/x",
    "/\\evil.example/x",
    "\\\\evil.example/x",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    " /\t/evil.example",
    "/%2F/evil.example",  # decodes once more to //evil.example in some proxies
    "/\x00/evil.example",
    "evil.example",
    "",
]
SAME_SITE = ["/agent/", "/editor/entry/report-pothole?done=saved", "/admin/audit?actor=a%20b"]


async def _sign_in_with_next(
    client: httpx.AsyncClient, username: str, password: str, target: str
) -> httpx.Response:
    page = await client.get("/login", params={"next": target})
    response = await client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "next": target,
            "csrf_token": token_in(page.text),
        },
        follow_redirects=False,
    )
    client.cookies.clear()
    return response


@pytest.mark.parametrize("target", HOSTILE, ids=[quote(t, safe="") or "empty" for t in HOSTILE])
async def test_sign_in_never_redirects_off_site(
    client: httpx.AsyncClient, make_user: MakeUser, target: str
) -> None:
    user, password = await make_user("agent")
    response = await _sign_in_with_next(client, user.username, password, target)
    assert response.status_code == 302
    assert response.headers["location"] == "/"


@pytest.mark.parametrize("target", SAME_SITE)
async def test_sign_in_follows_same_site_paths(
    client: httpx.AsyncClient, make_user: MakeUser, target: str
) -> None:
    user, password = await make_user("agent")
    response = await _sign_in_with_next(client, user.username, password, target)
    assert response.headers["location"] == target


async def test_signed_in_visit_to_login_does_not_redirect_off_site(
    login: Callable[..., Awaitable[httpx.AsyncClient]],
) -> None:
    agent = await login("agent")
    response = await agent.get(
        "/login", params={"next": "/\t/evil.example/x"}, follow_redirects=False
    )
    assert response.status_code == 302 and response.headers["location"] == "/"


async def test_the_login_form_carries_only_a_safe_next(client: httpx.AsyncClient) -> None:
    page = await client.get("/login", params={"next": "/\n/evil.example/x"})
    assert 'name="next" value="/"' in page.text
