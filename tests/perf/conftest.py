"""Shared by the action-call tests: Rasa patched, and a stand-in action server on loopback."""

from __future__ import annotations

import socket
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bot import rasa_patches


@pytest.fixture
async def patched(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Our Rasa patches installed, the retry budget short, the loop's kept session closed."""
    rasa_patches.install()
    monkeypatch.setattr(rasa_patches, "ACTION_SERVER_RETRY_BUDGET", 3.0)
    yield
    await rasa_patches.close_action_sessions()  # the kept one of this test's loop


@pytest.fixture
def port() -> int:
    """A free loopback port, nobody listening yet."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class StandInActionServer(ABC):
    """A small aiohttp app on a loopback port answering ``POST /webhook`` like rasa-sdk's
    webhook; it can be stopped and started again on the same port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._runner: web.AppRunner | None = None

    @abstractmethod
    async def webhook(self, request: web.Request) -> web.StreamResponse:
        """The answer to one action call."""

    async def start(self) -> None:
        """Listen on ``port``."""
        app = web.Application()
        app.router.add_post("/webhook", self.webhook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        """Stop listening and close its connections (a no-op when stopped)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
