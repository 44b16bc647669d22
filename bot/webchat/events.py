"""Each web chat conversation's events: a durable, replayable Redis stream per conversation.

Key layout (all built with :func:`bot.keys.key`, one hash slot per namespace):

* ``{ns}:webchat:events:<conversation>``: stream of ``message`` and ``status`` events (fields
  ``kind`` and ``data``, JSON), capped at :data:`MAX_EVENTS` and expiring
  ``retention.conversations`` days after its last event. Its stream ids are the events' ids
  (``Last-Event-ID``).
* ``{ns}:webchat:notify``: one short stream every edge process reads (:mod:`bot.webchat.fanout`):
  ``c`` = the conversation that has something new, optional ``t`` = a transient ``typing``
  event (never stored in the conversation).
* ``{ns}:webchat:echo:<conversation>:<client id>``: the event id of a resident's message
  already echoed (a retried POST is echoed once).
* ``{ns}:webchat:state:<conversation>``: hash: ``status``, ``agent_name``, ``ended`` (the token
  is revoked), ``phone_channel`` / ``phone`` (continuing on SMS or WhatsApp).
* ``{ns}:webchat:conversations``: sorted set, conversation -> last event (Unix seconds), for
  residents' rights (:mod:`bot.webchat.residents`); members past the retention period are
  trimmed as it is written.

Appending is one Lua script (event, expiry, notification, index): a notified event is always
readable, and an event is never readable without a notification following it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Literal

from redis.commands.core import AsyncScript

from bot.keys import key
from bot.webchat.retained import Retained

__all__ = [
    "ECHO_SECONDS",
    "MAX_EVENTS",
    "NOTIFY_MAXLEN",
    "Event",
    "EventKind",
    "EventLog",
    "conversation_keys",
    "event_id",
]

EventKind = Literal["message", "status", "typing"]
MAX_EVENTS = 1000
"""Events kept per conversation (older ones are trimmed, approximately)."""
NOTIFY_MAXLEN = 10_000
"""Notifications kept: far more than the readers ever fall behind."""
ECHO_SECONDS = 7 * 24 * 3600
"""How long a resident's message id is remembered (the inbox remembers it as long)."""
_EVENT_ID = re.compile(r"\d{1,20}-\d{1,20}\Z")

_APPEND = """
if ARGV[6] ~= '' then
  local prior = redis.call('GET', KEYS[3])
  if prior then return {prior, 0} end
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*',
  'kind', ARGV[1], 'data', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if ARGV[6] ~= '' then redis.call('SET', KEYS[3], id, 'EX', ARGV[6]) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], '*', 'c', ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[7], ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[7] - ARGV[4])
redis.call('EXPIRE', KEYS[5], ARGV[4])
return {id, 1}
"""


def event_id(text: str) -> str | None:
    """``text`` when it is a stream id (``1700000000000-0``), else None."""
    return text if _EVENT_ID.match(text) else None


def conversation_keys(namespace: str, conversation: str) -> list[str]:
    """Every key holding one conversation's web chat data (not the echo markers)."""
    return [
        key(namespace, "webchat", "events", conversation),
        key(namespace, "webchat", "state", conversation),
    ]


@dataclass(frozen=True)
class Event:
    """One event as the widget receives it.

    Attributes:
        id: Stream id (monotonic), empty for ``typing``.
        kind: ``message``, ``status`` or ``typing``.
        data: The JSON object (a message's ``id`` is its event id).
    """

    id: str
    kind: EventKind
    data: Mapping[str, Any]

    def sse(self) -> bytes:
        """The event in ``text/event-stream`` form."""
        lines = f"id: {self.id}\n" if self.id else ""
        payload = json.dumps(self.data, separators=(",", ":"), ensure_ascii=False)
        return f"{lines}event: {self.kind}\ndata: {payload}\n\n".encode()


def now_iso(clock: Callable[[], float] = time.time) -> str:
    """The clock's time as an ISO string (UTC)."""
    return datetime.fromtimestamp(clock(), UTC).isoformat(timespec="seconds")


class EventLog(Retained):
    """Appends and reads conversations' events (arguments: :class:`Retained`)."""

    @property
    def notify_key(self) -> str:
        """The notification stream every edge process reads."""
        return key(self.namespace, "webchat", "notify")

    @property
    def index_key(self) -> str:
        """The sorted set of conversations by their last event."""
        return key(self.namespace, "webchat", "conversations")

    @cached_property
    def _append(self) -> AsyncScript:
        return self.redis.register_script(_APPEND)

    def events_key(self, conversation: str) -> str:
        """The stream of one conversation."""
        return key(self.namespace, "webchat", "events", conversation)

    def state_key(self, conversation: str) -> str:
        """The state hash of one conversation."""
        return key(self.namespace, "webchat", "state", conversation)

    async def append(
        self,
        conversation: str,
        kind: EventKind,
        data: Mapping[str, Any],
        *,
        once_for: str = "",
    ) -> tuple[str, bool]:
        """Store an event and wake its readers; return (event id, new).

        Args:
            conversation: The conversation id (the token's).
            kind: ``message`` or ``status``.
            data: The event's JSON object (without ``id``).
            once_for: A client message id: a second append with it returns the first's id.

        Raises:
            redis.RedisError: Redis failed (nothing half-written: one script).
        """
        echo = key(self.namespace, "webchat", "echo", conversation, once_for or "-")
        result: Any = await self._append(
            keys=[
                self.events_key(conversation),
                self.notify_key,
                echo,
                self.index_key,
                self.state_key(conversation),
            ],
            args=[
                kind,
                json.dumps(dict(data), separators=(",", ":"), ensure_ascii=False),
                MAX_EVENTS,
                self.keep_seconds,
                conversation,
                str(ECHO_SECONDS) if once_for else "",
                self.clock(),
                NOTIFY_MAXLEN,
            ],
        )
        return str(result[0]), bool(int(result[1]))

    async def typing(self, conversation: str, data: Mapping[str, Any]) -> None:
        """Wake the conversation's readers with a transient ``typing`` event (not stored)."""
        payload = json.dumps(dict(data), separators=(",", ":"), ensure_ascii=False)
        await self.redis.xadd(
            self.notify_key, {"c": conversation, "t": payload}, maxlen=NOTIFY_MAXLEN
        )

    async def since(self, conversation: str, after: str | None, count: int = 500) -> list[Event]:
        """The conversation's events after the id ``after`` (None: from the start)."""
        start = f"({after}" if after else "-"
        rows: Any = await self.redis.xrange(
            self.events_key(conversation), min=start, max="+", count=count
        )
        events = []
        for entry_id, fields in rows:
            data = json.loads(fields["data"])
            if fields["kind"] == "message":
                data["id"] = entry_id
            events.append(Event(entry_id, fields["kind"], data))
        return events

    async def state(self, conversation: str) -> dict[str, str]:
        """The conversation's state hash (empty for a new one)."""
        found: dict[str, str] = await self.redis.hgetall(self.state_key(conversation))
        return found

    async def set_state(self, conversation: str, **values: str) -> None:
        """Change fields of the state hash (it expires with the conversation)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.state_key(conversation), mapping=values)
            pipe.expire(self.state_key(conversation), self.keep_seconds)
            await pipe.execute()

    async def ended(self, conversation: str) -> bool:
        """True once the resident (or retention) ended the conversation: its token is revoked."""
        return bool(await self.redis.hget(self.state_key(conversation), "ended"))
