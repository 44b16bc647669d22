"""Giving a conversation back to the bot through the Rasa HTTP API.

The bot was paused (``ConversationPaused``) when the case opened; appending a ``resume`` event
to the tracker lets it answer the resident's next message. An ``action_listen`` follows it:
a paused bot never ran one, and without it the rules (which expect the resident's message to
follow ``action_listen``) would not match the next message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

import aiohttp

from bot import settings

__all__ = ["RESUME_EVENTS", "RasaResumer", "Resumer"]

Resumer = Callable[[str], Awaitable[None]]
"""Resumes the bot for a conversation id (tests inject a fake)."""


RESUME_EVENTS = [{"event": "resume"}, {"event": "action", "name": "action_listen"}]
"""The events appended to the tracker."""
_PATH_SAFE = ":@!$&'()*+,;="
"""RFC 3986 ``pchar`` characters besides unreserved ones (``quote`` keeps those anyway)."""


class RasaResumer:
    """POSTs :data:`RESUME_EVENTS` to ``{RASA_URL}/conversations/{id}/tracker/events``.

    Args:
        url: The Rasa server (default ``RASA_URL`` or ``http://127.0.0.1:5005``).
        token: The API token (default ``RASA_AUTH_TOKEN``; empty: none sent).
        timeout_seconds: Give up after this long.
    """

    def __init__(
        self, url: str | None = None, token: str | None = None, timeout_seconds: float = 10
    ) -> None:
        if url is None or token is None:
            configured = settings.current()
            url = configured.rasa_url if url is None else url
            token = configured.rasa_auth_token if token is None else token
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def __call__(self, conversation_id: str) -> None:
        """Append the resume event.

        Raises:
            aiohttp.ClientError: Rasa did not answer with a 2xx status.
        """
        # Rasa's Sanic routes do not percent-decode path parameters: keep every character
        # that is legal in a path segment (':' and '+' of channel ids) as it is
        url = f"{self.url}/conversations/{quote(conversation_id, safe=_PATH_SAFE)}/tracker/events"
        params = {"token": self.token} if self.token else {}
        async with (
            aiohttp.ClientSession(timeout=self.timeout) as session,
            session.post(url, params=params, json=RESUME_EVENTS) as response,
        ):
            response.raise_for_status()
