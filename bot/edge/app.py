"""The edge's ASGI application: residents' webhooks in, Redis inbox out, nothing else.

Routes:

* ``GET|POST /webhooks/<channel>/webhook``: a channel of :data:`bot.channels.registry.CHANNELS`
  configured in the credentials file. POST: body size limit (413, on ``Content-Length`` and
  again while the body streams in), body read within ``body_timeout`` seconds (408), then
  :class:`bot.channels.webhook.Webhook`: signature check before parsing (403), parse (400),
  durable Redis inbox (503 while Redis is down), 200. GET answers Messenger's and X's checks.
* ``/webchat/...``: the council's website chat (:mod:`bot.webchat.app`, ``docs/webchat.md``),
  when the edge is given it (an :class:`EdgePart`: routes, and what runs while it serves).
* ``GET /media/<token>``: a resident's photo for the back office, by signed expiring token
  (:mod:`bot.reports.media_edge`, an :class:`EdgePart`), when ``COUNCIL_MEDIA_KEY`` is set.
* ``POST /reports/updates``: a back office pushing report status changes, authenticated by
  bearer secret or HMAC (:mod:`bot.reports.updates_edge`, an :class:`EdgePart`), when
  ``COUNCIL_REPORTS_WEBHOOK_SECRET`` is set.
* ``GET /health``: liveness for a load balancer: 200 while Redis answers, else 503.
* ``GET /health/channels``: :func:`bot.channels.health.channel_health` as JSON (the workers'
  heartbeats and backlogs, no personal data), 200 while replies flow, else 503. Only with
  ``Authorization: Bearer <COUNCIL_HEALTH_TOKEN>`` (compared in constant time; 401 otherwise);
  404 while the variable is unset. A token rather than "loopback only": behind a proxy on the
  same host every request would come from loopback.

Anything else is 404; nothing ever answers with a stack trace (:class:`Guard`). Request bodies
are never logged; refusals are logged per reason per interval with their count
(:class:`bot.logs.Tally`), so a barrage of forged requests is not a line each. Webhook POSTs
to a configured channel are served by a raw ASGI layer before Starlette's routing
(:class:`_WebhookPosts`: the edge's bulk traffic, genuine or forged, costs no request or
response objects). The application keeps no state of its own, so any number of replicas can run
behind a load balancer.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio
from starlette.applications import Starlette
from starlette.datastructures import URL
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import settings
from bot.channels.health import channel_health
from bot.channels.inbox import Inbox
from bot.channels.registry import ConfiguredChannel
from bot.channels.webhook import Webhook, WebhookResponse
from bot.errors import ConfigError
from bot.http_server import DEFAULT_BODY_TIMEOUT
from bot.logs import Tally

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_REFUSAL_DELAY",
    "HEALTH_TOKEN_VARIABLE",
    "MIN_HEALTH_TOKEN_LENGTH",
    "EdgePart",
    "Guard",
    "create_app",
]

HEALTH_TOKEN_VARIABLE = "COUNCIL_HEALTH_TOKEN"  # noqa: S105 (a variable name, not a secret)
"""The environment variable holding the token of ``/health/channels`` (unset: not served)."""
MIN_HEALTH_TOKEN_LENGTH = 32
"""Shortest token accepted (the route faces the internet: a guessable token is refused)."""

_log = logging.getLogger(__name__)
_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
_CLOSE = {**_HEADERS, "Connection": "close"}
_RAW_HEADERS = [(name.lower().encode(), value.encode()) for name, value in _HEADERS.items()]
_PREFIX, _SUFFIX = "/webhooks/", "/webhook"

DEFAULT_REFUSAL_DELAY = 0.5
"""Seconds a refused webhook POST waits for its answer (:class:`_RefusalDelay`)."""


class EdgePart(Protocol):
    """More routes the edge serves (the web chat), and what runs while it serves."""

    def routes(self) -> Sequence[BaseRoute]:
        """The routes (mounted beside the webhooks)."""
        ...

    def running(self) -> AbstractAsyncContextManager[None]:
        """Entered at start-up, left at shutdown."""
        ...


class _BodyTooLarge(Exception):
    """The body grew past the channel's limit while it was read."""


class Guard:
    """Outermost ASGI middleware: an exception becomes a short 500, logged without details.

    Starlette's own error middleware would answer, then re-raise to the server, which logs the
    traceback (and the exception's message, which may quote the request).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request; answer 500 if the application raised before answering."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # the one place every failure ends
            _log.error(
                "edge: %s %s failed: %s", scope.get("method"), scope.get("path"), type(exc).__name__
            )
            if not started:
                answer = PlainTextResponse("internal error", status_code=500, headers=_CLOSE)
                await answer(scope, receive, send)


def _response(answer: WebhookResponse) -> Response:
    return Response(
        answer.body, status_code=answer.status, media_type=answer.content_type, headers=_HEADERS
    )


@dataclass(frozen=True)
class _Answer:
    """A webhook POST's answer, sent by :class:`_WebhookPosts` (as Starlette would send it)."""

    status: int
    text: str
    content_type: str = "text/plain"
    close: bool = False

    async def send(self, send: Send) -> None:
        body = self.text.encode()
        content_type = self.content_type
        if content_type.startswith("text/") and "charset" not in content_type:
            content_type += "; charset=utf-8"
        headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", content_type.encode()),
            *_RAW_HEADERS,
        ]
        if self.close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _RefusalDelay:
    """Holds a refused webhook POST's answer for a moment, for a bounded number of them.

    A client gets one answer per connection at a time, so a delayed refusal caps what each
    of an attacker's connections can make the edge do (forged and malformed requests cost CPU
    genuine residents share) at the cost of a timer. Providers never see it: their signed
    requests are not refused. At most ``most`` answers are held at once, so a flood of
    connections cannot fill the server's connection limit with held refusals: beyond that,
    refusals are answered at once. Each wait is drawn between half and one and a half times
    ``seconds``: equal waits would wake an attacker's connections together, in bursts that
    genuine requests queue behind.
    """

    def __init__(self, seconds: float, most: int) -> None:
        self.seconds = seconds
        self.most = most
        self.held = 0

    async def hold(self) -> None:
        """Wait about ``seconds``, unless ``most`` answers are already waiting."""
        if self.seconds <= 0 or self.held >= self.most:
            return
        self.held += 1
        try:
            await asyncio.sleep(self.seconds * random.uniform(0.5, 1.5))  # noqa: S311 (not a secret)
        finally:
            self.held -= 1


class _WebhookPosts:
    """Raw ASGI layer before Starlette's routing: POSTs to a configured channel's webhook.

    Residents' webhooks, and a barrage of forged ones, are the edge's traffic: served here
    they cost no routing and no request or response objects (CPU genuine residents share).
    Everything else goes on to the routes.
    """

    def __init__(
        self,
        app: ASGIApp,
        names: frozenset[str],
        post: Callable[[str, Scope, Receive], Awaitable[_Answer]],
        delay: _RefusalDelay,
    ) -> None:
        self.app = app
        self.names = names
        self.post = post
        self.delay = delay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a webhook POST, or pass the request on."""
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith(_PREFIX) and path.endswith(_SUFFIX):
                name = path[len(_PREFIX) : -len(_SUFFIX)]
                if name in self.names:
                    answer = await self.post(name, scope, receive)
                    if 400 <= answer.status < 500:  # refused: forged, malformed, too large
                        await self.delay.hold()
                    await answer.send(send)
                    return
        await self.app(scope, receive, send)


async def _read_body(receive: Receive, limit: int) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        body += message.get("body", b"")
        if len(body) > limit:
            raise _BodyTooLarge
        if not message.get("more_body", False):
            return bytes(body)


def _health_token(given: str | None) -> str:
    token = settings.current().health_token if given is None else given
    if token and len(token) < MIN_HEALTH_TOKEN_LENGTH:
        raise ConfigError(
            "environment",
            HEALTH_TOKEN_VARIABLE,
            f"use at least {MIN_HEALTH_TOKEN_LENGTH} random characters",
        )
    return token


def create_app(
    channels: Sequence[ConfiguredChannel],
    inbox: Inbox,
    *,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    health_token: str | None = None,
    parts: Sequence[EdgePart] = (),
    refusal_log_every: float = 10.0,
    refusal_delay: float = 0.0,
    max_delayed_refusals: int = 100,
) -> Starlette:
    """The edge application.

    Args:
        channels: The configured channels (their adapters verify and parse).
        inbox: Where verified messages are queued; its Redis client is the caller's to close.
        body_timeout: Seconds allowed to read a request body.
        health_token: The bearer token of ``/health/channels`` ('' turns it off; None reads
            ``COUNCIL_HEALTH_TOKEN``).
        parts: More routes and their background work (the web chat).
        refusal_log_every: Seconds over which alike refusals are logged as one line with
            their count (:class:`bot.logs.Tally`; the first of a kind at once).
        refusal_delay: Seconds a refused webhook POST (4xx) waits for its answer; 0: none
            (the edge's command line defaults to :data:`DEFAULT_REFUSAL_DELAY`).
        max_delayed_refusals: Refusals held at once; the ones beyond are answered at once.

    Raises:
        ConfigError: The health token is shorter than :data:`MIN_HEALTH_TOKEN_LENGTH`.
    """
    token = _health_token(health_token)
    refusals = Tally(_log, refusal_log_every)
    hooks = {
        channel.spec.name: Webhook(
            channel.adapter, inbox, max_body_bytes=channel.max_body_bytes, refusals=refusals
        )
        for channel in channels
        if channel.spec.webhook
    }
    warn = logging.WARNING

    async def webhook(request: Request) -> Response:
        # GETs, and POSTs to a channel not configured (:class:`_WebhookPosts` serves the rest)
        hook = hooks.get(request.path_params["channel"])
        if hook is None:
            return PlainTextResponse("unknown channel", status_code=404, headers=_HEADERS)
        # a provider's check, or a delivery in the query string (a Twilio number set to GET)
        return _response(await hook.get(str(request.url), dict(request.headers)))

    async def post(name: str, scope: Scope, receive: Receive) -> _Answer:
        hook = hooks[name]
        # the server (bot.http_server) refused oversized heads and two framings already
        headers: dict[str, str] = {}
        for key, value in scope["headers"]:  # as Starlette's Headers: the first of a name
            headers.setdefault(key.decode("latin-1"), value.decode("latin-1"))
        if headers.get("content-encoding", "identity").lower() != "identity":
            # providers send plain bodies; decompressing would let a small request grow huge
            refusals.log(warn, "%s: compressed body refused", name)
            return _Answer(415, "compressed bodies are not accepted", close=True)
        if hook.too_large(headers):
            refusals.log(warn, "%s: declared body over %d bytes refused", name, hook.max_body_bytes)
            return _Answer(413, "payload too large", close=True)
        try:
            async with asyncio.timeout(body_timeout):
                body = await _read_body(receive, hook.max_body_bytes)
        except _BodyTooLarge:
            refusals.log(warn, "%s: body over %d bytes refused", name, hook.max_body_bytes)
            return _Answer(413, "payload too large", close=True)
        except TimeoutError:
            refusals.log(warn, "%s: body not received within %.0f s", name, body_timeout)
            return _Answer(408, "request body too slow", close=True)
        except ClientDisconnect:
            _log.info("%s: client went away while sending", name)
            return _Answer(400, "incomplete request", close=True)
        answer = await hook.receive(str(URL(scope=scope)), headers, body)
        return _Answer(answer.status, answer.body, answer.content_type)

    async def health(request: Request) -> Response:
        try:
            async with asyncio.timeout(2.0):
                await inbox.redis.ping()
        except (TimeoutError, redis.RedisError, OSError):
            return JSONResponse({"status": "redis unavailable"}, 503, headers=_HEADERS)
        return JSONResponse({"status": "ok"}, headers=_HEADERS)

    async def channels_health(request: Request) -> Response:
        if not token:
            return PlainTextResponse("not found", status_code=404, headers=_HEADERS)
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            refusals.log(warn, "edge: /health/channels refused (no or wrong token)")
            challenge = {**_HEADERS, "WWW-Authenticate": "Bearer"}
            return PlainTextResponse("token required", status_code=401, headers=challenge)
        try:
            async with asyncio.timeout(5.0):
                report = await channel_health(inbox.redis, inbox.namespace)
        except (TimeoutError, redis.RedisError, OSError):
            report = {"ok": False, "problems": ["Redis is unavailable"]}
        return JSONResponse(report, 200 if report["ok"] else 503, headers=_HEADERS)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await inbox.ensure_group()  # the workers create it too; here it is there sooner
        except redis.RedisError as exc:
            # keep serving: webhooks answer 503 (providers retry) and /health says why
            _log.warning("edge: Redis unavailable at start-up (%s)", type(exc).__name__)
        async with AsyncExitStack() as stack:
            for part in parts:
                await stack.enter_async_context(part.running())
            yield
        refusals.flush()
        await asyncio.gather(*(hook.adapter.aclose() for hook in hooks.values()))

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/health/channels", channels_health, methods=["GET"]),
            Route("/webhooks/{channel}/webhook", webhook, methods=["GET", "POST"]),
            *(route for part in parts for route in part.routes()),
        ],
        middleware=[
            Middleware(Guard),
            Middleware(
                _WebhookPosts,
                names=frozenset(hooks),
                post=post,
                delay=_RefusalDelay(refusal_delay, max_delayed_refusals),
            ),
        ],
        lifespan=lifespan,
    )
