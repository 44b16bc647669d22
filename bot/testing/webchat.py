"""A web chat client for tests and the benchmark: the widget's calls over httpx.

:class:`WebChatClient` starts a conversation, sends messages and reads the event stream the way
``bot/webchat/static/widget.js`` does (``docs/webchat.md``); :func:`parse_events` reads a
``text/event-stream`` body into :class:`SseEvent` values.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["SseEvent", "WebChatClient", "parse_events"]


@dataclass
class SseEvent:
    """One server-sent event (``comment`` for a ``:`` line, such as the keep-alive)."""

    kind: str = "message"
    id: str = ""
    data: dict[str, Any] = field(default_factory=dict)


async def parse_events(lines: AsyncIterator[str]) -> AsyncIterator[SseEvent]:
    """Events from the lines of an event stream."""
    current = SseEvent()
    data: list[str] = []
    async for line in lines:
        if line.startswith(":"):
            yield SseEvent("comment", "", {"text": line[1:].strip()})
        elif line.startswith("id:"):
            current.id = line[3:].strip()
        elif line.startswith("event:"):
            current.kind = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line.strip() and data:
            current.data = json.loads("\n".join(data))
            yield current
            current, data = SseEvent(), []


class WebChatClient:
    """One resident's widget.

    Args:
        http: The client (base URL = the edge; it sends the ``Origin`` header).
        council: The council id.
    """

    def __init__(self, http: httpx.AsyncClient, council: str) -> None:
        self.http = http
        self.council = council
        self.token = ""

    @property
    def auth(self) -> dict[str, str]:
        """The ``Authorization`` header of this conversation."""
        return {"Authorization": f"Bearer {self.token}"}

    async def start(self) -> str:
        """Start a conversation; return its token."""
        answer = await self.http.post("/webchat/sessions", json={"council": self.council})
        answer.raise_for_status()
        self.token = str(answer.json()["token"])
        return self.token

    async def send(
        self, text: str = "", client_id: str | None = None, **more: Any
    ) -> httpx.Response:
        """POST a message (a new ``client_id`` unless given)."""
        body = {"client_id": client_id or str(uuid.uuid4()), **more}
        if text:
            body["text"] = text
        return await self.http.post("/webchat/messages", json=body, headers=self.auth)

    async def events(
        self,
        until: Callable[[list[SseEvent]], bool],
        *,
        last_event_id: str | None = None,
        comments: bool = False,
    ) -> list[SseEvent]:
        """Read the event stream until ``until(events so far)`` holds (the caller times out)."""
        headers = dict(self.auth)
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        seen: list[SseEvent] = []
        async with self.http.stream("GET", "/webchat/events", headers=headers) as answer:
            if answer.status_code != 200:
                await answer.aread()
                raise httpx.HTTPStatusError(
                    f"events: {answer.status_code}", request=answer.request, response=answer
                )
            async for event in parse_events(answer.aiter_lines()):
                if event.kind != "comment" or comments:
                    seen.append(event)
                if until(seen):
                    return seen
        return seen
