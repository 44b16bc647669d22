"""Local stand-ins for the providers' APIs: aiohttp servers on 127.0.0.1 ephemeral ports.

Each records every request and answers from a script (status, JSON, headers, delay) or, when
the script is empty, with the provider's normal success answer.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


_ids = itertools.count(1)


def default_answer(request: Recorded) -> Answer:
    """What the real provider answers to a successful call."""
    n = next(_ids)
    if request.path.endswith("/Messages.json"):  # Twilio
        form = request.form()
        return Answer(
            201,
            {
                "sid": f"SM{n:032d}",
                "status": "queued",
                "to": form.get("To"),
                "from": form.get("From"),
                "body": form.get("Body"),
            },
        )
    if request.path.endswith("/sendMessage"):  # Telegram
        data = request.form() if not request.body.startswith(b"{") else request.json()
        return Answer(
            200,
            {
                "ok": True,
                "result": {
                    "message_id": n,
                    "date": 1732352400,
                    "chat": {"id": int(data.get("chat_id", 1)), "type": "private"},
                    "text": data.get("text", ""),
                },
            },
        )
    if request.path.endswith("/me/messages"):  # Messenger
        return Answer(200, {"recipient_id": "1", "message_id": f"m_sent_{n}"})
    if "/dm_conversations/with/" in request.path:  # X
        return Answer(201, {"data": {"dm_conversation_id": "1-2", "dm_event_id": str(n)}})
    return Answer(404, {"error": "unknown endpoint"})


class FakeProvider:
    """A provider API on loopback: ``url``, ``requests``, ``script(...)``."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._script: list[Answer] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    def script(self, *answers: Answer) -> None:
        """Answer the next requests with these, in order; then the default answer."""
        self._script.extend(answers)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        recorded = Recorded(
            request.method,
            request.path,
            dict(request.query),
            dict(request.headers),
            await request.read(),
        )
        self.requests.append(recorded)
        answer = self._script.pop(0) if self._script else default_answer(recorded)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return web.json_response(answer.body, status=answer.status, headers=answer.headers)

    async def start(self) -> FakeProvider:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
