"""Status changes of followed requests, sent to the residents who follow them, once each.

A change reaches :meth:`ReportUpdates.apply` two ways: :class:`UpdatePoller` asks the Open311
server (``GET requests`` by id, 50 at a time) for the open requests someone follows, every
``poll_minutes``; a back office that pushes POSTs to the edge (:mod:`bot.reports.updates_edge`),
which appends the request to the stream ``{ns}:reports:pushed`` for :class:`PushedUpdates`.

A change is a new ``(status, status_notes)``. A stored state never goes backwards: each update
has a time, its ``updated_datetime`` or, without one, when it was received (a push: its arrival
at the edge, the same for every copy of this process; a poll: when the server was asked), and
one older than the stored state's (field ``at``) is ignored (a late push, a copy applying what
another already went past), as is one with no time at all once the state has one; the save
itself checks again, in one Lua step, so two copies applying at once cannot roll it back
either. Each subscriber is told by
:class:`~bot.reports.notify.ResidentNotifier` with the marker ``<request id>|<change>``, where
the change is a digest of status, notes and update time: the poll and the push of the same
change, or a retried worker, tell nobody twice. Residents are told first and the last state
saved after, so a crash in between tells the rest on the next poll. A closed request is no
longer polled (a push can still reopen it).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import redis.asyncio

from bot.channels.supervisor import every
from bot.errors import BackOfficeError
from bot.reports.notify import ResidentNotifier
from bot.reports.open311 import Open311Client, ServiceRequest, service_request
from bot.reports.store import ReportStore

__all__ = ["PushedUpdates", "ReportUpdates", "UpdatePoller", "read_pushed"]

_log = logging.getLogger(__name__)

_IDS_PER_CALL = 50


def _moment(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _stamp(updated: str, at: float) -> dict[str, str]:
    """The stored time of a state: ``at`` always, the server's own text when it gave one."""
    return {"at": repr(at), "updated": updated} if updated else {"at": repr(at)}


# KEYS: last state (hash), followed requests. ARGV: status, notes, updated_datetime, time
# (Unix seconds, '' when unknown), request id. The state is saved unless the stored one is
# newer (copies apply the same polls and pushes, each checks then tells then saves); a
# closed request is no longer followed.
_SAVE = """
local stored = tonumber(redis.call('HGET', KEYS[1], 'at') or '')
if stored and (ARGV[4] == '' or tonumber(ARGV[4]) < stored) then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'notes', ARGV[2], 'updated', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'at', ARGV[4]) end
if ARGV[1] == 'closed' then
  redis.call('ZREM', KEYS[2], ARGV[5])
else
  redis.call('ZADD', KEYS[2], 'NX', 0, ARGV[5])
end
return 1
"""


def read_pushed(body: Any) -> list[ServiceRequest]:
    """The requests of a pushed body: one GeoReport v2 request object or a list of them.

    Raises:
        ValueError: Not such a body (no ``service_request_id`` or ``status``).
    """
    items = body if isinstance(body, list) else [body]
    found = []
    for item in items:
        if not isinstance(item, Mapping) or not item.get("service_request_id"):
            raise ValueError("each update needs a service_request_id")
        if str(item.get("status") or "").strip() == "":
            raise ValueError("each update needs a status")
        found.append(service_request(item))
    return found


class ReportUpdates:
    """Tells a request's subscribers about its changes (see the module docstring).

    Args:
        client: Asyncio Redis client (decoded strings).
        namespace: Key namespace.
        notifier: Queues the messages.
    """

    def __init__(
        self, client: redis.asyncio.Redis, namespace: str, notifier: ResidentNotifier
    ) -> None:
        self.redis = client
        self.store = ReportStore(client, namespace)
        self.notifier = notifier
        self._save = client.register_script(_SAVE)

    async def apply(self, request: ServiceRequest, received_at: float | None = None) -> int:
        """Tell the subscribers of ``request`` about it if it changed; return how many.

        Args:
            request: The request as the server answered or pushed it.
            received_at: Unix seconds when it was received (the poll's question, the push's
                arrival at the edge): its time when it has no ``updated_datetime``, so that
                even such an update applied late never takes the stored status back.
        """
        request_id = request.service_request_id
        subscribers = await self.store.subscribers(request_id)
        if not subscribers:
            return 0  # nobody follows it (a push of every request, or erased)
        last = await self.store.last_state(request_id)
        status, notes, updated = request.status, request.status_notes, request.updated_datetime
        at = _moment(updated) if updated else None
        at = received_at if at is None else at
        then = float(last["at"]) if last.get("at") else _moment(last.get("updated", ""))
        if then is not None and (at is None or at < then):
            return 0  # not known to be newer than what we know: a late push
        last_key = self.store.key("last", request_id)
        if last.get("status") == status and last.get("notes", "") == notes:
            if at is not None and at != then:
                await self.redis.hset(last_key, mapping=_stamp(updated, at))
            return 0
        change = hashlib.sha256(f"{status}|{notes}|{updated}".encode()).hexdigest()[:16]
        response = (
            "utter_report_update_closed" if status == "closed" else "utter_report_update_open"
        )
        told = 0
        for subscriber in subscribers:
            entry = await self.notifier.tell(
                subscriber,
                f"{request_id}|{change}",
                response,
                reference=subscriber.reference or request_id,
                service_name=subscriber.service_name or request.service_name,
                notes=notes,
                has_notes=bool(notes),
            )
            told += entry is not None
        # saved only if still the newest (another copy may have saved a newer one meanwhile)
        await self._save(
            keys=[last_key, self.store.key("followed")],
            args=[status, notes, updated, "" if at is None else repr(at), request_id],
        )
        return told


class UpdatePoller:
    """Asks the Open311 server about the open requests residents follow.

    Args:
        client: Asyncio Redis client (decoded strings).
        namespace: Key namespace.
        open311: The server's client.
        updates: Applies what it answers.
        every_seconds: How often each request is asked about (``poll_minutes``).
        batch: Requests asked about per :meth:`poll_once`.
        clock: Unix seconds.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        namespace: str,
        open311: Open311Client,
        updates: ReportUpdates,
        *,
        every_seconds: float = 300.0,
        batch: int = 500,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = client
        self.store = ReportStore(client, namespace)
        self.open311 = open311
        self.updates = updates
        self.every = every_seconds
        self.batch = batch
        self.clock = clock

    async def poll_once(self) -> int:
        """Ask about the requests due now; return how many residents were told."""
        followed = self.store.key("followed")
        due: list[str] = await self.redis.zrangebyscore(
            followed, "-inf", self.clock(), start=0, num=self.batch
        )
        told = 0
        for start in range(0, len(due), _IDS_PER_CALL):
            ids = due[start : start + _IDS_PER_CALL]
            asked = self.clock()  # the answer is the server's state as of this moment
            try:
                found = await self.open311.requests(ids=ids)
            except BackOfficeError as exc:
                _log.warning("report updates: %s; asking again later", exc)
                found = []
            for request in found:
                told += await self.updates.apply(request, asked)
            # still open (or not answered): ask again after the period
            await self.redis.zadd(followed, dict.fromkeys(ids, self.clock() + self.every), xx=True)
        return told

    async def run(self, stop: asyncio.Event, idle: float = 5.0) -> None:
        """Poll until ``stop`` is set, waiting ``idle`` seconds after each poll."""
        await every(stop, idle, self.poll_once)


class PushedUpdates:
    """Applies the requests the edge received from a pushing back office.

    Args:
        client: Asyncio Redis client (decoded strings).
        namespace: Key namespace.
        updates: Applies them.
    """

    def __init__(self, client: redis.asyncio.Redis, namespace: str, updates: ReportUpdates) -> None:
        self.redis = client
        self.stream = ReportStore(client, namespace).key("pushed")
        self.updates = updates

    async def drain(self, count: int = 100) -> int:
        """Apply what was pushed (oldest first); return how many residents were told."""
        told = 0
        while rows := await self.redis.xrange(self.stream, count=count):
            for entry_id, fields in rows:
                try:
                    request = read_pushed(json.loads(fields.get("request", "")))[0]
                except (ValueError, TypeError):
                    _log.warning("report updates: unreadable pushed entry %s dropped", entry_id)
                else:
                    # the edge's time of arrival (the entry id's): the same in every copy
                    told += await self.updates.apply(request, int(entry_id.split("-")[0]) / 1000)
                await self.redis.xdel(self.stream, entry_id)
        return told

    async def run(self, stop: asyncio.Event, idle: float = 1.0) -> None:
        """Drain until ``stop`` is set."""
        await every(stop, idle, self.drain)
