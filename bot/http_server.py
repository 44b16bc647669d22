"""uvicorn hardened for the processes that face the internet: the public edge and the console.

Requests are parsed by llhttp (C, through httptools): the edge answers a barrage of forged or
oversized webhooks while residents' messages wait in the same event loop, and h11's pure-Python
parsing and response writing were over half of its CPU per refused request.
:func:`guarded_httptools` is uvicorn's httptools protocol with the guards uvicorn lacks:

* a deadline on each request's head (request line and headers): it must arrive within
  ``head_timeout`` seconds of the connection opening or of the previous response, otherwise
  the connection is closed. uvicorn times out idle keep-alive connections, but a connection
  that keeps sending a byte of its head every few seconds resets nothing and is never closed:
  a few hundred of them fill ``limit_concurrency`` and every genuine request gets 503
  (slowloris);
* a head of at most :data:`MAX_HEAD_BYTES`, whether it arrives in one piece or many: 431 and
  the connection closed (uvicorn would keep buffering a header that never ends);
* with a ``body_timeout``, the body must then arrive within that many seconds, or the client
  gets 408 and the connection is closed (the application sees the client go away);
* a request with two framings (``Content-Length`` and ``Transfer-Encoding``, the shape of
  request smuggling) gets 400 ``ambiguous framing``; any other malformed request uvicorn's 400
  ``Invalid HTTP request received.``. Never a stack trace.

Each refusal or closure is logged through a :class:`bot.logs.Tally` (a line per kind, and per
client address for slow clients, per 10 s, with the count), so a barrage is not a line each.

:func:`hardened_config` is the whole server configuration both processes use: that protocol,
idle keep-alive connections closed after a few seconds, 503 at once beyond
``limit_concurrency`` connections, proxy headers not trusted by the server, no WebSocket,
access log off unless asked. The edge times out bodies in its application
(:mod:`bot.edge.app`); the console here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bot.logs import Tally

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEAD_TIMEOUT",
    "DEFAULT_KEEP_ALIVE",
    "DEFAULT_LIMIT_CONCURRENCY",
    "MAX_HEAD_BYTES",
    "guarded_httptools",
    "hardened_config",
]

DEFAULT_HEAD_TIMEOUT = 10.0
"""Seconds a client has to send a request's line and headers."""
DEFAULT_BODY_TIMEOUT = 10.0
"""Seconds a client has to send a request's body (forms and webhooks are a few KB)."""
MAX_HEAD_BYTES = 16 * 1024
"""Largest request line plus headers (providers send about 1 KiB, browsers a few)."""
DEFAULT_KEEP_ALIVE = 5
"""Seconds an idle keep-alive connection stays open."""
DEFAULT_LIMIT_CONCURRENCY = 1000
"""Connections served at once; more get 503 at once."""

_log = logging.getLogger(__name__)
# llhttp's words for a request with both Content-Length and Transfer-Encoding (either order)
_TWO_FRAMINGS = "can't be present with"


class _HeadTooLarge(Exception):
    """The request line and headers grew past :data:`MAX_HEAD_BYTES`."""


def _refusal(status: bytes, text: bytes) -> bytes:
    """A whole plain-text answer that closes the connection."""
    return b"".join(
        [
            b"HTTP/1.1 " + status + b"\r\n",
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: " + str(len(text)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
            text,
        ]
    )


_HEAD_TOO_LARGE = _refusal(b"431 Request Header Fields Too Large", b"request headers too large")
_AMBIGUOUS = _refusal(b"400 Bad Request", b"ambiguous framing")
_BODY_TOO_SLOW = _refusal(b"408 Request Timeout", b"request body too slow")


class _GuardedHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` with head and body deadlines, a head size limit, no smuggling."""

    head_timeout = DEFAULT_HEAD_TIMEOUT
    body_timeout: float | None = None
    refusals = Tally(_log)  # a barrage of malformed requests: a line per kind per 10 s

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._body_deadline: asyncio.TimerHandle | None = None
        self._reading_head = True  # between one request's end and the next one's headers
        self._raw_head = 0  # bytes received while reading the head (with any body sent along)
        self._parsed_head = 0  # the head's request target, header names and values
        self._framings = 0  # Content-Length and Transfer-Encoding headers of this request

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        self._disarm_body_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._reading_head:
            self._raw_head += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()  # no WebSocket here (ws="none")
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._refuse(_HEAD_TOO_LARGE, "request head over %d bytes", MAX_HEAD_BYTES)
            elif self._framings > 1 or _TWO_FRAMINGS in str(exc):
                self._refuse(_AMBIGUOUS, "request with two framings")
            else:
                self._refuse(None, "malformed request")
            return
        if self._reading_head and self._raw_head > MAX_HEAD_BYTES:
            # still no end of head: llhttp would keep buffering a header that never ends
            self._refuse(_HEAD_TOO_LARGE, "request head over %d bytes", MAX_HEAD_BYTES)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._parsed_head = 0
        self._framings = 0

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value))
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self._framings += 1
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._disarm_head_deadline()  # a request is being served: its body has its own limit
        super().on_headers_complete()
        if self.body_timeout is not None and self._body_deadline is None:
            self._body_deadline = self.loop.call_later(self.body_timeout, self._body_too_slow)

    def on_message_complete(self) -> None:
        self._disarm_body_deadline()
        self._reading_head = True
        self._raw_head = 0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self._waiting_for_head():
            self._arm_head_deadline()

    def _unsupported_upgrade_warning(self) -> None:
        # uvicorn's is two warnings per request (one suggests installing a WebSocket library)
        self.refusals.log(logging.INFO, "upgrade not supported: served as plain HTTP")

    def _count_head(self, size: int) -> None:
        self._parsed_head += size
        if self._parsed_head > MAX_HEAD_BYTES:
            raise _HeadTooLarge  # llhttp stops; data_received answers 431

    def _refuse(self, answer: bytes | None, reason: str, *args: object) -> None:
        self.refusals.log(logging.WARNING, "refused: " + reason, *args)
        self._disarm_body_deadline()
        if answer is None:
            self.send_400_response("Invalid HTTP request received.")
            return
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()

    def _waiting_for_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._head_deadline = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _disarm_body_deadline(self) -> None:
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None

    def _body_too_slow(self) -> None:
        self._body_deadline = None
        if self.transport.is_closing():
            return
        client = self.client[0] if self.client else "?"
        self.refusals.log(logging.WARNING, "closed a connection from %s: body too slow", client)
        cycle = self.cycle
        if cycle is not None:
            # the application reads "client went away"; anything it sends now is dropped
            cycle.disconnected = True
            cycle.message_event.set()
            if not cycle.response_started:
                self.transport.write(_BODY_TOO_SLOW)
        self.transport.close()

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self._waiting_for_head() and not self.transport.is_closing():
            client = self.client[0] if self.client else "?"
            self.refusals.log(logging.WARNING, "closed a connection from %s: head too slow", client)
            self.transport.close()


def guarded_httptools(
    head_timeout: float = DEFAULT_HEAD_TIMEOUT, body_timeout: float | None = None
) -> type[HttpToolsProtocol]:
    """The protocol class to give ``uvicorn.Config(http=...)``.

    Args:
        head_timeout: Seconds allowed for a request's line and headers.
        body_timeout: Seconds allowed for its body once the head is in (None: no limit here,
            the application has its own).
    """
    limits = {"head_timeout": head_timeout, "body_timeout": body_timeout, "refusals": Tally(_log)}
    return type("GuardedHttpToolsProtocol", (_GuardedHttpToolsProtocol,), limits)


def hardened_config(
    app: object,
    host: str,
    port: int,
    *,
    head_timeout: float = DEFAULT_HEAD_TIMEOUT,
    body_timeout: float | None = None,
    keep_alive: int = DEFAULT_KEEP_ALIVE,
    limit_concurrency: int = DEFAULT_LIMIT_CONCURRENCY,
    access_log: bool = False,
    **options: Any,
) -> uvicorn.Config:
    """The hardened server configuration (see the module docstring).

    Args:
        app: The ASGI application.
        host: Address to listen on.
        port: Port to listen on.
        head_timeout: Seconds for a request's line and headers.
        body_timeout: Seconds for its body (None: the application times bodies out).
        keep_alive: Seconds an idle keep-alive connection stays open.
        limit_concurrency: Connections served at once; more get 503.
        access_log: Log one line per request (paths and statuses, never bodies).
        **options: Other ``uvicorn.Config`` arguments (logging, lifespan).
    """
    # uvicorn logs access lines whenever its logger has a handler, root's included
    logging.getLogger("uvicorn.access").propagate = access_log
    settings: dict[str, Any] = {
        "http": guarded_httptools(head_timeout, body_timeout),
        "timeout_keep_alive": keep_alive,
        "limit_concurrency": limit_concurrency,
        "timeout_graceful_shutdown": 10,
        "proxy_headers": False,
        "access_log": access_log,
        "lifespan": "on",
        "ws": "none",
    }
    settings.update(options)
    return uvicorn.Config(app, host=host, port=port, **settings)  # type: ignore[arg-type]
