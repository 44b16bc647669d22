"""The web chat's HTTP routes, mounted by the public edge under ``/webchat/``.

The protocol (requests, answers, events) is ``docs/webchat.md``. :class:`WebChat` holds what
the routes share (the profile's section, the token signer, the event log, the rate limits,
the uploads, the phone links, the inbox) and runs the process' notification reader
(:class:`~bot.webchat.fanout.FanOut`) while the edge runs. Everything lives in Redis: any
number of edges serve any conversation.

A resident's message is echoed into its conversation's event stream and accepted by the
durable :class:`~bot.channels.inbox.Inbox` (de-duplicated on the widget's ``client_id``) before
the 202, as the channel ``webchat`` (account: the council id, sender: the conversation), so the
same inbox worker, Rasa, outbox and handoff serve it; the replies come back through
:class:`~bot.webchat.adapter.WebChatAdapter`. No message text, token or address is logged.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from bot import profile, settings
from bot.channels.base import Attachment, InboundMessage
from bot.channels.inbox import Inbox
from bot.handoff.hours import OpeningHours
from bot.logs import Tally
from bot.webchat.assets import STATIC
from bot.webchat.config import WebChatConfig
from bot.webchat.events import Event, EventLog, event_id, now_iso
from bot.webchat.fanout import FanOut
from bot.webchat.limits import Decision, RateLimiter
from bot.webchat.phone import PhoneLink, uk_mobile
from bot.webchat.pins import PinError, shared_location
from bot.webchat.status import CHANNEL
from bot.webchat.tokens import Conversation, TokenError, TokenSigner
from bot.webchat.uploads import UploadError, UploadStore, attachment_url

__all__ = ["KEEP_ALIVE_SECONDS", "MAX_STREAMS_PER_CONVERSATION", "WebChat", "for_edge"]

_log = logging.getLogger(__name__)

KEEP_ALIVE_SECONDS = 15.0
"""A comment line is sent this often on an idle event stream (proxies close silent ones)."""
MAX_STREAMS_PER_CONVERSATION = 4
"""Event streams one conversation may hold open at once (tabs, reconnects)."""
_CLIENT_ID = re.compile(r"[A-Za-z0-9-]{8,64}\Z")
_UPLOAD_ID = re.compile(r"[0-9a-f]{24}\Z")
_STATIC_NAME = re.compile(r"[a-z0-9-]+\.(js|css)\Z")
_CONTENT_TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}
_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
_ALLOW_HEADERS = "Authorization, Content-Type, Last-Event-ID"
_SMALL_BODY = 16 * 1024
_RATE_WINDOW = 60


class _Refused(Exception):
    """Answer with a JSON error at once."""

    def __init__(
        self, status: int, error: str, message: str, headers: dict[str, str] | None = None
    ):
        super().__init__(error)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers or {}


def _error(
    status: int, error: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse(
        {"error": error, "message": message}, status, headers={**_NO_STORE, **(headers or {})}
    )


@dataclass
class _StaticFile:
    mtime: float
    body: bytes
    gzipped: bytes
    etag: str


@dataclass
class WebChat:
    """The web chat of one council on one edge process.

    Args:
        config: The profile's ``webchat`` section.
        secret: ``COUNCIL_WEBCHAT_SECRET``.
        inbox: The edge's durable inbox (its Redis client is used for everything).
        hours: The contact centre's opening hours (``open_now``, ``next_open``).
        keep_days: The profile's ``retention.conversations``.
        trusted_proxies: ``COUNCIL_TRUSTED_PROXIES`` (client addresses from
            ``X-Forwarded-For`` only behind them, as in the console).
        max_streams: Event streams this edge holds open at once. Each holds one of the
            edge's connections; beyond this, a new stream is answered 503 ``busy`` with
            ``Retry-After`` (the widget reconnects), so open chats cannot take every
            connection and leave residents' webhooks refused.
        clock: Unix seconds.
        static: Folder of the widget's files.
    """

    config: WebChatConfig
    secret: str
    inbox: Inbox
    hours: OpeningHours
    keep_days: int = 90
    trusted_proxies: tuple[str, ...] = ()
    max_streams: int = 800
    clock: Callable[[], float] = time.time
    static: Path = STATIC
    signer: TokenSigner = field(init=False)
    log: EventLog = field(init=False)
    fanout: FanOut = field(init=False)
    limits: RateLimiter = field(init=False)
    uploads: UploadStore = field(init=False)
    phones: PhoneLink = field(init=False)
    busy: Tally = field(init=False)  # a flood of streams refused: a line per 10 s, not each
    _files: dict[str, _StaticFile] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        client = self.inbox.redis
        namespace = self.inbox.namespace
        self.signer = TokenSigner(self.secret, self.config.council_id, clock=self.clock)
        self.log = EventLog(client, namespace, keep_days=self.keep_days, clock=self.clock)
        self.fanout = FanOut(client, namespace)
        self.limits = RateLimiter(client, namespace, self.secret, clock=self.clock)
        self.uploads = UploadStore(client, namespace, keep_days=self.keep_days, clock=self.clock)
        self.phones = PhoneLink(client, namespace, self.secret, self.log)
        self.busy = Tally(_log)

    @property
    def redis(self) -> redis.asyncio.Redis:
        """The Redis client (the inbox's)."""
        return self.inbox.redis

    # -- the edge's hooks ---------------------------------------------------------------

    def routes(self) -> list[Mount]:
        """The ``/webchat`` mount (client addresses from trusted proxies only)."""
        app = Starlette(
            routes=[
                Route("/config", self.config_route, methods=["GET", "OPTIONS"]),
                Route("/sessions", self.sessions_route, methods=["POST", "OPTIONS"]),
                Route("/messages", self.messages_route, methods=["POST", "OPTIONS"]),
                Route("/events", self.events_route, methods=["GET", "OPTIONS"]),
                Route("/uploads", self.uploads_route, methods=["POST", "OPTIONS"]),
                Route("/end", self.end_route, methods=["POST", "OPTIONS"]),
                Route("/continue", self.continue_route, methods=["POST", "OPTIONS"]),
                Route("/continue/confirm", self.confirm_route, methods=["POST", "OPTIONS"]),
                Route("/{name}", self.static_route, methods=["GET", "HEAD"]),
            ]
        )
        if self.trusted_proxies:
            # uvicorn's X-Forwarded-For handling, believed only from these proxies (as the console)
            app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(self.trusted_proxies))
        return [Mount("/webchat", app=app)]

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the notification reader while the edge serves."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.fanout.run(stop))
        try:
            yield
        finally:
            stop.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self.busy.flush()  # no count of refused streams is lost

    # -- shared checks ------------------------------------------------------------------

    def _cors(self, request: Request) -> dict[str, str]:
        origin = request.headers.get("origin", "")
        if not self.config.allows(origin):
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": "Retry-After",
            "Vary": "Origin",
        }

    def _preflight(self, request: Request) -> Response:
        cors = self._cors(request)
        if not cors:
            return _error(403, "origin", "This site may not use the council's chat.")
        return Response(
            status_code=204,
            headers={
                **cors,
                "Access-Control-Allow-Methods": "GET, POST",
                "Access-Control-Allow-Headers": _ALLOW_HEADERS,
                "Access-Control-Max-Age": "600",
            },
        )

    def _address(self, request: Request) -> str:
        return request.client.host if request.client else ""

    async def _limit(self, decision: Awaitable[Decision]) -> None:
        answer = await decision
        if not answer.allowed:
            raise _Refused(
                429,
                "rate_limited",
                "Too many requests. Please wait a moment and try again.",
                {"Retry-After": str(answer.retry_after)},
            )

    async def _address_limit(self, request: Request) -> None:
        limit = self.config.limits.address_requests_per_minute
        await self._limit(
            self.limits.address("address", self._address(request), limit, _RATE_WINDOW)
        )

    def _origin(self, request: Request) -> None:
        if not self._cors(request):
            _log.info("webchat: %s refused: origin not allowed", request.url.path)
            raise _Refused(403, "origin", "This site may not use the council's chat.")

    async def _conversation(self, request: Request) -> Conversation:
        given = request.headers.get("authorization", "")
        if not given.startswith("Bearer "):
            raise _Refused(401, "token", "This chat has ended. Start a new one.")
        try:
            conversation = self.signer.verify(given[len("Bearer ") :].strip())
        except TokenError as exc:
            _log.info("webchat: token refused (%s)", exc.reason)
            raise _Refused(401, "token", "This chat has ended. Start a new one.") from None
        if await self.log.ended(conversation.conversation):
            raise _Refused(401, "token", "This chat has ended. Start a new one.")
        return conversation

    async def _json(self, request: Request, limit: int = _SMALL_BODY) -> dict[str, Any]:
        body = await _read(request, limit)
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise _Refused(400, "malformed", "The request is not JSON.") from None
        if not isinstance(data, dict):
            raise _Refused(400, "malformed", "The request must be a JSON object.")
        return data

    async def _guarded(
        self,
        request: Request,
        handler: Callable[[Request], Awaitable[Response]],
        *,
        post: bool = True,
    ) -> Response:
        if request.method == "OPTIONS":
            return self._preflight(request)
        cors = self._cors(request)
        try:
            if post:
                self._origin(request)
            await self._address_limit(request)
            response = await handler(request)
        except _Refused as refused:
            response = _error(refused.status, refused.error, refused.message, refused.headers)
        except (redis.RedisError, OSError) as exc:
            _log.warning(
                "webchat: %s: Redis unavailable (%s)", request.url.path, type(exc).__name__
            )
            response = _error(503, "unavailable", "The chat is unavailable. Try again shortly.")
        response.headers.update(cors)
        return response

    def _open_now(self) -> tuple[bool, str | None]:
        moment = datetime.fromtimestamp(self.clock(), UTC)
        if self.hours.is_open(moment):
            return True, None
        return False, self.hours.next_opening(moment).isoformat(timespec="minutes")

    # -- routes -------------------------------------------------------------------------

    async def config_route(self, request: Request) -> Response:
        """``GET /webchat/config?council=<id>``: how the widget looks and what it may do."""

        async def answer(request: Request) -> Response:
            if request.query_params.get("council") != self.config.council_id:
                raise _Refused(404, "council", "No chat for that council.")
            open_now, next_open = self._open_now()
            limits = self.config.limits
            return JSONResponse(
                {
                    "council_id": self.config.council_id,
                    "name": self.config.name,
                    "greeting": self.config.greeting,
                    "colours": {
                        "primary": self.config.primary,
                        "on_primary": self.config.on_primary,
                    },
                    "pages": list(self.config.pages),
                    "open_now": open_now,
                    "next_open": next_open,
                    "continue_channels": list(self.config.continue_channels),
                    "limits": {
                        "max_text_chars": limits.max_text_chars,
                        "max_upload_bytes": limits.max_upload_bytes,
                        "upload_types": list(limits.upload_types),
                    },
                },
                headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
            )

        return await self._guarded(request, answer, post=False)

    async def sessions_route(self, request: Request) -> Response:
        """``POST /webchat/sessions``: a new conversation and its token."""

        async def answer(request: Request) -> Response:
            data = await self._json(request)
            if data.get("council") != self.config.council_id:
                raise _Refused(400, "council", "No chat for that council.")
            per_hour = self.config.limits.sessions_per_hour
            await self._limit(
                self.limits.address("sessions", self._address(request), per_hour, 3600)
            )
            token, _conversation = self.signer.issue()
            return JSONResponse({"token": token}, 201, headers=_NO_STORE)

        return await self._guarded(request, answer)

    async def messages_route(self, request: Request) -> Response:
        """``POST /webchat/messages``: a resident's message, queued before the 202."""

        async def answer(request: Request) -> Response:
            conversation = await self._conversation(request)
            limits = self.config.limits
            data = await self._json(request, limits.max_text_chars * 4 + _SMALL_BODY)
            client_id = data.get("client_id")
            if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
                raise _Refused(400, "client_id", "client_id must be a UUID.")
            text, payload, title, upload_id = (
                data.get(name) for name in ("text", "payload", "title", "upload_id")
            )
            for name, value in (("text", text), ("payload", payload), ("title", title)):
                if value is not None and not isinstance(value, str):
                    raise _Refused(400, name, f"{name} must be text.")
            if text is not None and len(text) > limits.max_text_chars:
                raise _Refused(
                    413, "too_long", f"Messages can be up to {limits.max_text_chars} characters."
                )
            if len(payload or "") > 200 or len(title or "") > 200:
                raise _Refused(400, "payload", "The button is not one of ours.")
            attachments: tuple[Attachment, ...] = ()
            if upload_id is not None:
                if not isinstance(upload_id, str) or not _UPLOAD_ID.match(upload_id):
                    raise _Refused(400, "upload_id", "No such upload.")
                found = await self.uploads.get(conversation.conversation, upload_id)
                if found is None:
                    raise _Refused(400, "upload_id", "No such upload.")
                url = attachment_url(conversation.conversation, upload_id)
                attachments = (Attachment("image", url, found[0]),)
            words = (text or "").strip()
            pin = None
            if data.get("location") is not None:
                if words or payload or attachments:
                    raise _Refused(400, "location", "A location is sent on its own.")
                try:
                    pin = shared_location(data["location"])
                except PinError as exc:
                    raise _Refused(
                        400, "location", f"The location is refused: {exc.reason}."
                    ) from None
            if not words and not payload and not attachments and pin is None:
                raise _Refused(400, "empty", "Write a message first.")
            per_minute = limits.messages_per_minute
            await self._limit(
                self.limits.hit("messages", conversation.conversation, per_minute, _RATE_WINDOW)
            )
            echo: dict[str, Any] = {
                "from": "resident",
                "text": words or (title or "") if payload else words,
                "buttons": [],
                "upload": None,
                "client_id": client_id,
                "at": now_iso(self.clock),
            }
            if attachments:
                echo["upload_id"] = upload_id
            if pin is not None:
                echo["location"] = {"latitude": pin.latitude, "longitude": pin.longitude}
            entry, _new = await self.log.append(
                conversation.conversation, "message", echo, once_for=client_id
            )
            message = InboundMessage(
                channel=CHANNEL,
                account=self.config.council_id,
                sender=conversation.conversation,
                message_id=client_id,
                text=words if not payload else (title or words),
                received_at=self.clock(),
                attachments=attachments,
                location=pin,
                quick_reply_payload=payload or None,
            )
            await self.inbox.accept([message])  # a retried POST is a duplicate here: once
            return JSONResponse({"id": entry}, 202, headers=_NO_STORE)

        return await self._guarded(request, answer)

    async def events_route(self, request: Request) -> Response:
        """``GET /webchat/events``: the conversation's events, replayed then live (SSE)."""

        async def answer(request: Request) -> Response:
            conversation = await self._conversation(request)
            after = request.headers.get("last-event-id", "").strip()
            last = event_id(after) if after else None
            if after and last is None:
                raise _Refused(400, "last_event_id", "Last-Event-ID is not an event id.")
            if self.fanout.listening >= self.max_streams:
                self.busy.log(
                    logging.WARNING,
                    "webchat: %d event streams open: new ones refused",
                    self.max_streams,
                )
                raise _Refused(
                    503, "busy", "The chat is busy. Reconnecting shortly.", {"Retry-After": "15"}
                )
            if self.fanout.streams(conversation.conversation) >= MAX_STREAMS_PER_CONVERSATION:
                raise _Refused(
                    429, "streams", "This chat is open in too many tabs.", {"Retry-After": "15"}
                )
            return StreamingResponse(
                self._stream(conversation.conversation, last),
                media_type="text/event-stream",
                headers={**_NO_STORE, "X-Accel-Buffering": "no"},
            )

        return await self._guarded(request, answer, post=False)

    async def _stream(self, conversation: str, last: str | None) -> AsyncIterator[bytes]:
        with self.fanout.listen(conversation) as listener:
            state = await self.log.state(conversation)
            open_now, next_open = self._open_now()
            status: dict[str, Any] = {
                "state": "ended" if state.get("ended") else state.get("status", "bot"),
                "open_now": open_now,
                "next_open": next_open,
            }
            if state.get("agent_name"):
                status["agent_name"] = state["agent_name"]
            yield b"retry: 2000\n\n" + Event("", "status", status).sse()
            # the first keep-alive at a random point: streams opened together (a reconnect
            # storm, the benchmark) must not all wake in the same instant every 15 s after
            quiet = KEEP_ALIVE_SECONDS * random.uniform(0.2, 1.0)  # noqa: S311 (not a secret)
            while True:
                listener.woken.clear()
                for event in await self.log.since(conversation, last):
                    last = event.id
                    yield event.sse()
                    if event.kind == "status" and event.data.get("state") == "ended":
                        return
                while listener.typing:
                    yield Event("", "typing", listener.typing.pop(0)).sse()
                try:
                    async with asyncio.timeout(quiet):
                        await listener.woken.wait()
                except TimeoutError:
                    quiet = KEEP_ALIVE_SECONDS
                    yield b": keep-alive\n\n"

    async def uploads_route(self, request: Request) -> Response:
        """``POST /webchat/uploads``: a photo (raw body), checked and kept; 201 with its id."""

        async def answer(request: Request) -> Response:
            conversation = await self._conversation(request)
            limits = self.config.limits
            kind = request.headers.get("content-type", "")
            if kind.split(";", 1)[0].strip().lower() not in limits.upload_types:
                raise _Refused(415, "type", f"Only {', '.join(limits.upload_types)} can be sent.")
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limits.max_upload_bytes:
                raise _Refused(413, "too_large", "The file is too large.")
            per_minute = limits.messages_per_minute
            await self._limit(
                self.limits.hit("messages", conversation.conversation, per_minute, _RATE_WINDOW)
            )
            body = await _read(request, limits.max_upload_bytes)
            try:
                upload_id = await self.uploads.save(conversation.conversation, kind, body, limits)
            except UploadError as exc:
                error = "too_large" if exc.status == 413 else "upload"
                raise _Refused(exc.status, error, exc.reason) from None
            return JSONResponse({"upload_id": upload_id}, 201, headers=_NO_STORE)

        return await self._guarded(request, answer)

    async def end_route(self, request: Request) -> Response:
        """``POST /webchat/end``: the resident ends the chat; the token stops working."""

        async def answer(request: Request) -> Response:
            conversation = await self._conversation(request)
            await self.log.set_state(conversation.conversation, ended="1", status="ended")
            await self.log.append(
                conversation.conversation, "status", {"state": "ended", "at": now_iso(self.clock)}
            )
            return JSONResponse({"ok": True}, headers=_NO_STORE)

        return await self._guarded(request, answer)

    async def continue_route(self, request: Request) -> Response:
        """``POST /webchat/continue``: send a code to the resident's number (202)."""

        async def answer(request: Request) -> Response:
            conversation = await self._conversation(request)
            data = await self._json(request)
            channel = data.get("channel")
            if channel not in self.config.continue_channels:
                raise _Refused(400, "channel", "That way of continuing is not offered.")
            phone = uk_mobile(data["phone"]) if isinstance(data.get("phone"), str) else None
            if phone is None:
                raise _Refused(400, "phone", "Enter a UK mobile number, like 07700 900123.")
            await self._limit(self.limits.hit("codes", conversation.conversation, 3, 3600))
            await self.phones.start(conversation.conversation, str(channel), phone, self.config)
            return JSONResponse({"ok": True}, 202, headers=_NO_STORE)

        return await self._guarded(request, answer)

    async def confirm_route(self, request: Request) -> Response:
        """``POST /webchat/continue/confirm``: the code sent; 200 once it matches."""

        async def answer(request: Request) -> Response:
            conversation = await self._conversation(request)
            data = await self._json(request)
            code = data.get("code")
            if not isinstance(code, str) or not re.fullmatch(r"\s*\d{6}\s*", code):
                raise _Refused(400, "code", "The code is 6 digits.")
            confirmed = await self.phones.confirm(
                conversation.conversation, code, self.config.council_id
            )
            if confirmed is None:
                raise _Refused(429, "code_expired", "Ask for a new code.", {"Retry-After": "0"})
            if not confirmed:
                raise _Refused(400, "code", "That code is not right.")
            return JSONResponse({"ok": True}, headers=_NO_STORE)

        return await self._guarded(request, answer)

    async def static_route(self, request: Request) -> Response:
        """``GET /webchat/widget.js`` and ``widget.css`` (ETag, gzip, 5 minutes' cache)."""
        name = request.path_params["name"]
        found = self._file(name) if _STATIC_NAME.match(name) else None
        if found is None:
            return _error(404, "not_found", "No such file.")
        headers = {
            "ETag": found.etag,
            "Cache-Control": "public, max-age=300",
            "Cross-Origin-Resource-Policy": "cross-origin",
            "X-Content-Type-Options": "nosniff",
            "Vary": "Accept-Encoding",
        }
        if request.headers.get("if-none-match") == found.etag:
            return Response(status_code=304, headers=headers)
        kind = _CONTENT_TYPES[name.rsplit(".", 1)[1]]
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(found.gzipped, media_type=kind, headers=headers)
        return Response(found.body, media_type=kind, headers=headers)

    def _file(self, name: str) -> _StaticFile | None:
        path = self.static / name
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return None
        cached = self._files.get(name)
        if cached is None or cached.mtime != mtime:
            body = path.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            cached = _StaticFile(mtime, body, gzip.compress(body, 9, mtime=0), etag)
            self._files[name] = cached
        return cached


def for_edge(inbox: Inbox, max_streams: int) -> WebChat | None:
    """This process' web chat (profile, settings), or None when it is not configured.

    Served when the profile has a ``webchat`` section and ``COUNCIL_WEBCHAT_SECRET`` is set;
    ``max_streams``: :attr:`WebChat.max_streams`.
    """
    council = profile.current()
    shared = settings.current()
    if council.webchat is None or not shared.webchat_secret:
        if council.webchat is not None:
            _log.warning("webchat: COUNCIL_WEBCHAT_SECRET is unset: the web chat is not served")
        return None
    return WebChat(
        council.webchat,
        shared.webchat_secret,
        inbox,
        council.hours,
        keep_days=council.retention_in_force(shared).conversation_days,
        trusted_proxies=shared.trusted_proxies,
        max_streams=max_streams,
    )


async def _read(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _Refused(413, "too_large", "The request is too large.")
    body = bytearray()
    try:
        async with asyncio.timeout(30):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise _Refused(413, "too_large", "The request is too large.")
    except TimeoutError:
        raise _Refused(408, "slow", "The request was too slow.") from None
    except ClientDisconnect:
        raise _Refused(400, "incomplete", "The request was incomplete.") from None
    return bytes(body)
