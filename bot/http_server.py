"""uvicorn hardened for the processes that face the internet: the public edge and the console.

uvicorn times out idle keep-alive connections, but a connection that keeps sending a byte of
its request line or headers every few seconds resets nothing and is never closed: a few
hundred of them fill ``limit_concurrency`` and every genuine request gets 503 (slowloris).
:func:`guarded_h11` is uvicorn's h11 protocol with a deadline: each request's head (request
line and headers) must arrive within ``head_timeout`` seconds of the connection opening or of
the previous response, otherwise the connection is closed. :func:`hardened_config` is the
whole server configuration both processes use: that protocol, a 16 KiB head, idle keep-alive
connections closed after a few seconds, 503 at once beyond ``limit_concurrency`` connections,
proxy headers not trusted by the server, no WebSocket, access log off unless asked. Slow
bodies are each application's to time out.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "DEFAULT_HEAD_TIMEOUT",
    "DEFAULT_KEEP_ALIVE",
    "DEFAULT_LIMIT_CONCURRENCY",
    "MAX_HEAD_BYTES",
    "guarded_h11",
    "hardened_config",
]

DEFAULT_HEAD_TIMEOUT = 10.0
"""Seconds a client has to send a request's line and headers."""
MAX_HEAD_BYTES = 16 * 1024
"""Largest request line plus headers (providers send about 1 KiB, browsers a few)."""
DEFAULT_KEEP_ALIVE = 5
"""Seconds an idle keep-alive connection stays open."""
DEFAULT_LIMIT_CONCURRENCY = 1000
"""Connections served at once; more get 503 at once."""

_log = logging.getLogger(__name__)


class _GuardedH11Protocol(H11Protocol):
    """:class:`H11Protocol` that closes connections whose request head is too slow."""

    head_timeout = DEFAULT_HEAD_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self._waiting_for_head():
            return
        self._disarm_head_deadline()  # a request is being served: its body has its own limit

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

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self._waiting_for_head() and not self.transport.is_closing():
            client = self.client[0] if self.client else "?"
            _log.warning("closed a connection from %s: request head too slow", client)
            self.transport.close()


def guarded_h11(head_timeout: float = DEFAULT_HEAD_TIMEOUT) -> type[H11Protocol]:
    """The protocol class to give ``uvicorn.Config(http=...)``.

    Args:
        head_timeout: Seconds allowed for a request's line and headers.
    """
    return type("GuardedH11Protocol", (_GuardedH11Protocol,), {"head_timeout": head_timeout})


def hardened_config(
    app: object,
    host: str,
    port: int,
    *,
    head_timeout: float = DEFAULT_HEAD_TIMEOUT,
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
        keep_alive: Seconds an idle keep-alive connection stays open.
        limit_concurrency: Connections served at once; more get 503.
        access_log: Log one line per request (paths and statuses, never bodies).
        **options: Other ``uvicorn.Config`` arguments (logging, lifespan).
    """
    # uvicorn logs access lines whenever its logger has a handler, root's included
    logging.getLogger("uvicorn.access").propagate = access_log
    settings: dict[str, Any] = {
        "http": guarded_h11(head_timeout),
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
