"""uvicorn hardened for the processes that face the internet: the public edge and the console.

uvicorn times out idle keep-alive connections, but a connection that keeps sending a byte of
its request line or headers every few seconds resets nothing and is never closed: a few
hundred of them fill ``limit_concurrency`` and every genuine request gets 503 (slowloris).
:func:`guarded_h11` is uvicorn's h11 protocol with a deadline: each request's head (request
line and headers) must arrive within ``head_timeout`` seconds of the connection opening or of
the previous response, otherwise the connection is closed. With a ``body_timeout`` the body
must then arrive within that many seconds, or the client gets 408 and the connection is
closed (the application sees the client go away). :func:`hardened_config` is the whole server
configuration both processes use: that protocol, a 16 KiB head, idle keep-alive connections
closed after a few seconds, 503 at once beyond ``limit_concurrency`` connections, proxy
headers not trusted by the server, no WebSocket, access log off unless asked. The edge times
out bodies in its application (:mod:`bot.edge.app`); the console here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEAD_TIMEOUT",
    "DEFAULT_KEEP_ALIVE",
    "DEFAULT_LIMIT_CONCURRENCY",
    "MAX_HEAD_BYTES",
    "guarded_h11",
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


class _GuardedH11Protocol(H11Protocol):
    """:class:`H11Protocol` that closes connections whose request head (or body) is too slow."""

    head_timeout = DEFAULT_HEAD_TIMEOUT
    body_timeout: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._body_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        self._disarm_body_deadline()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self._waiting_for_head():
            return
        self._disarm_head_deadline()  # a request is being served: its body has its own limit
        if self._receiving_body():
            if self._body_deadline is None and self.body_timeout is not None:
                self._body_deadline = self.loop.call_later(self.body_timeout, self._body_too_slow)
        else:
            self._disarm_body_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self._waiting_for_head():
            self._arm_head_deadline()

    def _waiting_for_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._head_deadline = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _receiving_body(self) -> bool:
        return self.conn.their_state is h11.SEND_BODY

    def _disarm_body_deadline(self) -> None:
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None

    def _body_too_slow(self) -> None:
        self._body_deadline = None
        if not self._receiving_body() or self.transport.is_closing():
            return
        client = self.client[0] if self.client else "?"
        _log.warning("closed a connection from %s: request body too slow", client)
        cycle = self.cycle
        if cycle is not None:
            # the application reads "client went away"; anything it sends now is dropped
            cycle.disconnected = True
            cycle.message_event.set()
            if not cycle.response_started:
                self._answer_408()
        self.transport.close()

    def _answer_408(self) -> None:
        text = b"request body too slow"
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(text)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=408, headers=headers, reason=b"Request Timeout"),
            h11.Data(data=text),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self._waiting_for_head() and not self.transport.is_closing():
            client = self.client[0] if self.client else "?"
            _log.warning("closed a connection from %s: request head too slow", client)
            self.transport.close()


def guarded_h11(
    head_timeout: float = DEFAULT_HEAD_TIMEOUT, body_timeout: float | None = None
) -> type[H11Protocol]:
    """The protocol class to give ``uvicorn.Config(http=...)``.

    Args:
        head_timeout: Seconds allowed for a request's line and headers.
        body_timeout: Seconds allowed for its body once the head is in (None: no limit here,
            the application has its own).
    """
    limits = {"head_timeout": head_timeout, "body_timeout": body_timeout}
    return type("GuardedH11Protocol", (_GuardedH11Protocol,), limits)


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
        "http": guarded_h11(head_timeout, body_timeout),
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
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
