"""uvicorn's h11 protocol with a deadline on each request's head (slowloris).

uvicorn times out idle keep-alive connections, but a connection that keeps sending a byte of
its request line or headers every few seconds resets nothing and is never closed: a few
hundred of them fill ``limit_concurrency`` and every genuine request gets 503. Here each
request's head (request line and headers) must arrive within ``head_timeout`` seconds of the
connection opening or of the previous response; otherwise the connection is closed. Slow
bodies are the application's to time out (:mod:`bot.edge.app`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["DEFAULT_HEAD_TIMEOUT", "guarded_h11"]

DEFAULT_HEAD_TIMEOUT = 10.0
"""Seconds a client has to send a request's line and headers."""

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
            _log.warning("edge: closed a connection from %s: request head too slow", client)
            self.transport.close()


def guarded_h11(head_timeout: float = DEFAULT_HEAD_TIMEOUT) -> type[H11Protocol]:
    """The protocol class to give ``uvicorn.Config(http=...)``.

    Args:
        head_timeout: Seconds allowed for a request's line and headers.
    """
    return type("GuardedH11Protocol", (_GuardedH11Protocol,), {"head_timeout": head_timeout})
