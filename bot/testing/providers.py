"""Local stand-ins for the providers' APIs (Twilio, Telegram, Meta, X) on loopback.

:class:`FakeProvider` is an aiohttp server on an ephemeral 127.0.0.1 port that records every
request and answers from a script (status, JSON, headers, delay) or, when the script is
empty, with the provider's normal success answer (Messenger and Instagram share Meta's Send
API). Files residents send are served too (:meth:`FakeProvider.twilio_media`,
:meth:`~FakeProvider.telegram_file`, :meth:`~FakeProvider.cdn_file`,
:meth:`~FakeProvider.x_dm_media`), with the providers' authentication rules. Point the
real clients at it (Twilio ``Client`` through ``api_base_url``, python-telegram-bot
``Bot(base_url=...)``).
:class:`ProviderThread` runs one on a loop of its own, for tests whose servers are other
processes.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from bot.channels.oauth1 import OAuth1Credentials, authorization_header, parse_authorization

__all__ = ["Answer", "FakeProvider", "File", "ProviderThread", "Recorded", "default_answer"]


@dataclass
class Recorded:
    """One request the fake provider received.

    Attributes:
        method: HTTP method.
        path: URL path.
        query: Query parameters.
        headers: Request headers.
        body: Raw body.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """The body as a form (first value of each field)."""
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def fields(self) -> dict[str, Any]:
        """The body as JSON or form, whichever it is."""
        return dict(self.json()) if self.body.startswith(b"{") else self.form()


@dataclass
class Answer:
    """A scripted answer.

    Attributes:
        status: HTTP status.
        body: JSON body.
        headers: Response headers (``Retry-After``...).
        delay: Seconds to wait before answering (simulates a timeout).
    """

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class File:
    """A file the fake serves at a path.

    Attributes:
        data: Its bytes.
        content_type: Its MIME type.
        basic_auth: ``(user, password)`` the request must carry (Twilio media), or None.
        redirect: Answer with a 307 to this path instead (Twilio's redirect to its CDN).
        oauth1: The credentials an OAuth 1.0a signature must be made with (X DM media), or None.
    """

    data: bytes
    content_type: str
    basic_auth: tuple[str, str] | None = None
    redirect: str = ""
    oauth1: OAuth1Credentials | None = None


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
        data = request.fields()
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
    if request.path.endswith("/me/messages"):  # Messenger and Instagram (one Send API)
        return Answer(200, {"recipient_id": "1", "message_id": f"m_sent_{n}"})
    if "/dm_conversations/with/" in request.path:  # X
        return Answer(201, {"data": {"dm_conversation_id": "1-2", "dm_event_id": str(n)}})
    return Answer(404, {"error": "unknown endpoint"})


class FakeProvider:
    """A provider API on loopback: ``url``, ``requests``, ``script(...)``."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.files: dict[str, File] = {}
        self._telegram_paths: dict[str, tuple[str, int]] = {}
        self._script: list[Answer] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    def script(self, *answers: Answer) -> None:
        """Answer the next requests with these, in order; then the default answer."""
        self._script.extend(answers)

    def cdn_file(self, data: bytes, content_type: str = "image/jpeg") -> str:
        """Serve ``data`` at an unguessable address needing no credentials (Meta's CDN, X)."""
        path = f"/cdn/{uuid.uuid4().hex}"
        self.files[path] = File(data, content_type)
        return f"{self.url}{path}"

    def twilio_media(
        self, account_sid: str, auth_token: str, data: bytes, content_type: str = "image/jpeg"
    ) -> str:
        """A ``MediaUrlN`` of a message, served as Twilio does.

        It needs basic auth with the account's SID and token, then answers a 307 to the file
        on the CDN.
        """
        message, media = uuid.uuid4().hex, uuid.uuid4().hex
        path = f"/2010-04-01/Accounts/{account_sid}/Messages/MM{message}/Media/ME{media}"
        cdn = f"/cdn/{uuid.uuid4().hex}"
        self.files[cdn] = File(data, content_type)
        self.files[path] = File(b"", content_type, (account_sid, auth_token), redirect=cdn)
        return f"{self.url}{path}"

    def x_dm_media(
        self, credentials: OAuth1Credentials, data: bytes, content_type: str = "image/jpeg"
    ) -> str:
        """A DM file's ``media_url_https``, served as X serves ``ton.twitter.com``.

        It needs a GET signed with OAuth 1.0a HMAC-SHA1 with ``credentials`` (checked by
        recomputing the signature from the request); otherwise 401.
        """
        path = f"/1.1/ton/data/dm/{next(_ids)}/{next(_ids)}/{uuid.uuid4().hex[:8]}.jpg"
        self.files[path] = File(data, content_type, oauth1=credentials)
        return f"{self.url}{path}"

    def _oauth1_valid(self, recorded: Recorded, credentials: OAuth1Credentials) -> bool:
        given = parse_authorization(recorded.headers.get("Authorization", ""))
        if given.get("oauth_consumer_key") != credentials.consumer_key:
            return False
        if given.get("oauth_token") != credentials.token:
            return False
        query = "&".join(f"{name}={value}" for name, value in recorded.query.items())
        expected = parse_authorization(
            authorization_header(
                recorded.method,
                f"{self.url}{recorded.path}" + (f"?{query}" if query else ""),
                consumer_key=credentials.consumer_key,
                consumer_secret=credentials.consumer_secret,
                token=credentials.token,
                token_secret=credentials.token_secret,
                nonce=given.get("oauth_nonce", ""),
                timestamp=given.get("oauth_timestamp", ""),
            )
        )
        return hmac.compare_digest(
            given.get("oauth_signature", "").encode(), expected["oauth_signature"].encode()
        )

    def telegram_file(self, token: str, data: bytes, content_type: str = "image/jpeg") -> str:
        """Register a file for ``getFile``; return its ``file_id``.

        ``getFile`` gives its path; it is downloaded from ``/file/bot<token>/<file_path>``.
        """
        file_id = f"AgAC{uuid.uuid4().hex}"
        file_path = f"photos/file_{next(_ids)}.jpg"
        self._telegram_paths[file_id] = (file_path, len(data))
        self.files[f"/file/bot{token}/{file_path}"] = File(data, content_type)
        return file_id

    def _file_answer(self, recorded: Recorded) -> web.StreamResponse | None:
        if recorded.path.endswith("/getFile"):
            file_id = str(recorded.fields().get("file_id", ""))
            found_path = self._telegram_paths.get(file_id)
            if found_path is None:
                body = {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: invalid file_id",
                }
                return web.json_response(body, status=400)
            path, size = found_path
            result = {
                "file_id": file_id,
                "file_unique_id": file_id[-8:],
                "file_size": size,
                "file_path": path,
            }
            return web.json_response({"ok": True, "result": result})
        found = self.files.get(recorded.path)
        if found is None:
            return None
        if found.basic_auth is not None:
            user, password = found.basic_auth
            expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            if recorded.headers.get("Authorization") != expected:
                return web.json_response(
                    {"code": 20003, "message": "Authenticate", "status": 401}, status=401
                )
        if found.oauth1 is not None and not self._oauth1_valid(recorded, found.oauth1):
            body = {"errors": [{"code": 32, "message": "Could not authenticate you."}]}
            return web.json_response(body, status=401)
        if found.redirect:
            return web.Response(status=307, headers={"Location": f"{self.url}{found.redirect}"})
        return web.Response(body=found.data, content_type=found.content_type)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        recorded = Recorded(
            request.method,
            request.path,
            dict(request.query),
            dict(request.headers),
            await request.read(),
        )
        self.requests.append(recorded)
        if not self._script:
            served = self._file_answer(recorded)
            if served is not None:
                return served
        answer = self._script.pop(0) if self._script else default_answer(recorded)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return web.json_response(answer.body, status=answer.status, headers=answer.headers)

    async def start(self) -> FakeProvider:
        """Serve on an ephemeral loopback port (``url``)."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()


class ProviderThread:
    """A :class:`FakeProvider` on an event loop of its own thread (for synchronous tests)."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.fake = FakeProvider()

    @property
    def url(self) -> str:
        """The fake's base URL."""
        return self.fake.url

    def start(self) -> ProviderThread:
        """Start the loop and the server."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        """Stop the server and the loop."""
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def wait_for(
        self, matches: Callable[[Recorded], bool], count: int = 1, timeout: float = 60.0
    ) -> list[Recorded]:
        """Wait until ``count`` recorded requests match; return the matching ones.

        Raises:
            AssertionError: Fewer arrived within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = [request for request in list(self.fake.requests) if matches(request)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} of {count} requests arrived in {timeout} s")
            time.sleep(0.1)
