"""Giving a conversation back to the bot through the Rasa HTTP API.

The bot was paused (``ConversationPaused``) when the case opened; appending a ``resume`` event
to the tracker lets it answer the resident's next message.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from urllib.parse import quote

import aiohttp

__all__ = ["RasaResumer", "Resumer"]

Resumer = Callable[[str], Awaitable[None]]
"""Resumes the bot for a conversation id (tests inject a fake)."""


class RasaResumer:
    """POSTs ``{"event": "resume"}`` to ``{RASA_URL}/conversations/{id}/tracker/events``.

    Args:
        url: The Rasa server (default ``RASA_URL`` or ``http://127.0.0.1:5005``).
        token: The API token (default ``RASA_AUTH_TOKEN``; empty: none sent).
        timeout_seconds: Give up after this long.
    """

    def __init__(
        self, url: str | None = None, token: str | None = None, timeout_seconds: float = 10
    ) -> None:
        self.url = (url or os.environ.get("RASA_URL") or "http://127.0.0.1:5005").rstrip("/")
        self.token = token if token is not None else os.environ.get("RASA_AUTH_TOKEN", "")
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def __call__(self, conversation_id: str) -> None:
        """Append the resume event.

        Raises:
            aiohttp.ClientError: Rasa did not answer with a 2xx status.
        """
        url = f"{self.url}/conversations/{quote(conversation_id, safe='')}/tracker/events"
        params = {"token": self.token} if self.token else {}
        async with (
            aiohttp.ClientSession(timeout=self.timeout) as session,
            session.post(url, params=params, json={"event": "resume"}) as response,
        ):
            response.raise_for_status()
