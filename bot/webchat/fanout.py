"""One Redis reader per edge process wakes the open event streams of its conversations.

Thousands of browsers hold ``GET /webchat/events`` open; none of them holds a Redis
connection. Each registers a :class:`Listener` (an :class:`asyncio.Event` and a short list of
transient ``typing`` events) under its conversation id. :class:`FanOut` reads the
notification stream ``{ns}:webchat:notify`` (:mod:`bot.webchat.events`) with one blocking
``XREAD`` and sets the listeners of the conversations named; each stream then reads its own
conversation's new events with ``XRANGE`` after the last id it sent. A notification read
twice or a wake-up without news costs one empty ``XRANGE``; after a Redis error every
listener is woken, so nothing waits on a notification that was lost with the connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis.asyncio

from bot.keys import key

__all__ = ["FanOut", "Listener"]

_log = logging.getLogger(__name__)
_MAX_TYPING = 4


class Listener:
    """What one open event stream waits on.

    Attributes:
        woken: Set when the conversation has news (the stream clears it before reading).
        typing: Transient ``typing`` events not yet sent (at most a few).
    """

    __slots__ = ("typing", "woken")

    def __init__(self) -> None:
        self.woken = asyncio.Event()
        self.typing: list[dict[str, Any]] = []

    def wake(self, typing: dict[str, Any] | None = None) -> None:
        """Note news (and a typing event) and wake the stream."""
        if typing is not None and len(self.typing) < _MAX_TYPING:
            self.typing.append(typing)
        self.woken.set()


class FanOut:
    """The process' notification reader.

    Args:
        client: Asyncio Redis client (decoded strings); one of its connections blocks in
            ``XREAD``.
        namespace: Key namespace.
        block_ms: How long one read blocks.
    """

    def __init__(
        self, client: redis.asyncio.Redis, namespace: str = "cr", *, block_ms: int = 5000
    ) -> None:
        self.redis = client
        self.stream = key(namespace, "webchat", "notify")
        self.block_ms = block_ms
        self._listeners: dict[str, set[Listener]] = {}
        self.ready = asyncio.Event()

    @property
    def listening(self) -> int:
        """Open streams registered."""
        return sum(len(group) for group in self._listeners.values())

    def streams(self, conversation: str) -> int:
        """Open streams of one conversation on this process."""
        return len(self._listeners.get(conversation, ()))

    @contextmanager
    def listen(self, conversation: str) -> Iterator[Listener]:
        """Register a listener for ``conversation`` while the block runs."""
        listener = Listener()
        group = self._listeners.setdefault(conversation, set())
        group.add(listener)
        try:
            yield listener
        finally:
            group.discard(listener)
            if not group:
                self._listeners.pop(conversation, None)

    def wake_all(self) -> None:
        """Wake every listener (after a Redis error: a notification may have been lost)."""
        for group in self._listeners.values():
            for listener in group:
                listener.wake()

    def _deliver(self, fields: dict[str, str]) -> None:
        group = self._listeners.get(fields.get("c", ""))
        if not group:
            return
        typing = None
        if "t" in fields:
            try:
                typing = json.loads(fields["t"])
            except ValueError:
                return
        for listener in group:
            listener.wake(typing)

    async def run(self, stop: asyncio.Event) -> None:
        """Read notifications until ``stop`` is set (Redis errors are waited out)."""
        last = "$"
        delay = 0.5
        while not stop.is_set():
            try:
                if last == "$":  # start after what is there now, by id, so nothing is skipped
                    newest: Any = await self.redis.xrevrange(self.stream, count=1)
                    last = newest[0][0] if newest else "0-0"
                    self.ready.set()
                    self.wake_all()
                answer: Any = await self.redis.xread(
                    {self.stream: last}, count=1000, block=self.block_ms
                )
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except (redis.RedisError, OSError) as exc:
                _log.warning("webchat: notification reader: %s; retrying", type(exc).__name__)
                last = "$"
                self.ready.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            for _stream, entries in answer or ():
                for entry_id, fields in entries:
                    last = entry_id
                    self._deliver(fields)
