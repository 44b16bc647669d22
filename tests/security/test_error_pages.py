"""Error pages: the console's own, for 404, 405 and 500.

The tester's report: a server error showed aiohttp's bare "500 Internal Server Error" page: no
``lang``, no landmarks, no way back, and none of the console's security headers.

Now every error is the console's page (``<html lang>``, a skip link, ``<main>``, a way home,
the security headers) or ``{"error", "message"}`` JSON under ``/api/``; a server error names
no exception, file or stack frame, and is logged with the request's method and path.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response

from bot.web.app import CSP, ConsoleApp

SECRET_DETAIL = "redis password is hunter2 at /srv/council/bot/web/secret.py"


@pytest.fixture
def console_app(console_app: ConsoleApp) -> ConsoleApp:
    async def broken(request: Request) -> Response:
        raise RuntimeError(SECRET_DETAIL)

    console_app.add_route("/broken", broken)
    console_app.add_route("/api/broken", broken)
    return console_app


@pytest.fixture
async def unraising_client(console_app: ConsoleApp) -> AsyncIterator[httpx.AsyncClient]:
    # a browser sees what the server sends; the test transport must not re-raise instead
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=console_app, raise_app_exceptions=False),
        base_url="http://testserver",
    ) as client:
        yield client


def _is_console_page(response: httpx.Response) -> None:
    html = response.text
    assert response.headers["content-type"].startswith("text/html")
    assert '<html lang="en-GB">' in html
    assert '<main id="main"' in html and 'class="skip-link"' in html
    assert '<a href="/">' in html
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


async def test_server_error_is_our_page_without_details(
    unraising_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="bot.web.app"):
        response = await unraising_client.get("/broken?q=resident+words")
    assert response.status_code == 500
    _is_console_page(response)
    assert "<h1>Internal Server Error</h1>" in response.text
    for leak in ("hunter2", "RuntimeError", "Traceback", "secret.py", ".py"):
        assert leak not in response.text
    assert any("GET /broken" in r.getMessage() for r in caplog.records)
    assert all("resident words" not in r.getMessage() for r in caplog.records)


async def test_server_error_under_api_is_json(unraising_client: httpx.AsyncClient) -> None:
    response = await unraising_client.get("/api/broken")
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "Internal Server Error" and "hunter2" not in body["message"]


async def test_not_found_and_method_not_allowed_are_our_pages(client: httpx.AsyncClient) -> None:
    missing = await client.get("/no/such/page")
    assert missing.status_code == 404
    _is_console_page(missing)
    wrong_method = await client.put("/login")
    assert wrong_method.status_code == 405
    _is_console_page(wrong_method)
    assert "<h1>Method Not Allowed</h1>" in wrong_method.text
    static = await client.get("/static/no-such-file.css")
    assert static.status_code == 404 and '<html lang="en-GB">' in static.text


async def test_oversized_body_is_refused_with_our_page(client: httpx.AsyncClient) -> None:
    response = await client.post("/login", content=b"x" * (2 * 1024 * 1024))
    assert response.status_code == 413
    _is_console_page(response)


async def test_oversized_body_without_a_length_is_refused_while_read(
    client: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"a=" + b"x" * 65_536 + b"&"

    response = await client.post(
        "/login",
        content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    _is_console_page(response)
