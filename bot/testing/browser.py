"""Clients of the console for tests: headless Debian Chromium and in-process HTTP.

:func:`chromium` is Playwright's Chromium (it never downloads one). :func:`serve` runs an ASGI
application (the console) under a real uvicorn server on an ephemeral loopback port, in the
test's own event loop, for the browser to load. :func:`asgi_client` calls the application
in-process (no socket) for plain HTTP tests.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from playwright.async_api import Browser, async_playwright
from starlette.types import ASGIApp

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "LocalServer", "asgi_client", "chromium", "serve"]

CHROMIUM = "/usr/bin/chromium"
"""Debian's chromium (``apt-get install chromium``; ``.ci/run`` installs it)."""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    # without these Chromium keeps dialling Google's hosts, which this network refuses
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium, closed on exit."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


_START_SECONDS = 10


@dataclass(frozen=True)
class LocalServer:
    """A running loopback server.

    Attributes:
        base_url: ``http://127.0.0.1:<port>``.
    """

    base_url: str

    def make_url(self, path: str) -> str:
        """The absolute URL of ``path`` (``"/agent/"``) on this server."""
        return self.base_url + path


@asynccontextmanager
async def serve(app: ASGIApp, *, lifespan: bool = False) -> AsyncIterator[LocalServer]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (an ephemeral port) until the block ends.

    ``lifespan`` runs the app's start-up and shutdown work (off by default: tests build the
    app's state themselves).
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])
    config = uvicorn.Config(
        app,
        http="h11",
        ws="none",
        lifespan="on" if lifespan else "off",
        access_log=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with asyncio.timeout(_START_SECONDS):
            while not server.started:
                if task.done():
                    task.result()  # start-up failed: raise its error here
                await asyncio.sleep(0.01)
        yield LocalServer(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await task
        listener.close()


def asgi_client(app: ASGIApp) -> httpx.AsyncClient:
    """An HTTP client calling ``app`` in-process, following redirects.

    Requests come from 127.0.0.1 to ``http://testserver``; close it with ``aclose()`` (or use
    ``async with``). Cookies persist between requests like a browser's.
    """
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", follow_redirects=True
    )
