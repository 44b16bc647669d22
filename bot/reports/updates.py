"""Status changes of followed requests, sent to the residents who follow them, once each.

A change reaches :meth:`ReportUpdates.apply` two ways: :class:`UpdatePoller` asks the Open311
server (``GET requests`` by id, 50 at a time) for the open requests someone follows, every
``poll_minutes``; a back office that pushes POSTs to the edge (:mod:`bot.reports.updates_edge`),
which appends the request to the stream ``{ns}:reports:pushed`` for :class:`PushedUpdates`.

A change is a new ``(status, status_notes)``; an older ``updated_datetime`` than the last one
seen is ignored (a late push). Each subscriber is told by
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

    async def apply(self, request: ServiceRequest) -> int:
        """Tell the subscribers of ``request`` about it if it changed; return how many."""
        request_id = request.service_request_id
        subscribers = await self.store.subscribers(request_id)
        if not subscribers:
            return 0  # nobody follows it (a push of every request, or erased)
        last = await self.store.last_state(request_id)
        status, notes, updated = request.status, request.status_notes, request.updated_datetime
        then, now = _moment(last.get("updated", "")), _moment(updated)
        if then is not None and now is not None and now < then:
            return 0  # older than what we know: a late push
        last_key = self.store.key("last", request_id)
        if last.get("status") == status and last.get("notes", "") == notes:
            if updated and updated != last.get("updated"):
                await self.redis.hset(last_key, "updated", updated)
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
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(last_key, mapping={"status": status, "notes": notes, "updated": updated})
            if status == "closed":
                pipe.zrem(self.store.key("followed"), request_id)
            else:
                pipe.zadd(self.store.key("followed"), {request_id: 0}, nx=True)
            await pipe.execute()
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
            try:
                found = await self.open311.requests(ids=ids)
            except BackOfficeError as exc:
                _log.warning("report updates: %s; asking again later", exc)
                found = []
            for request in found:
                told += await self.updates.apply(request)
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
                    told += await self.updates.apply(request)
                await self.redis.xdel(self.stream, entry_id)
        return told

    async def run(self, stop: asyncio.Event, idle: float = 1.0) -> None:
        """Drain until ``stop`` is set."""
        await every(stop, idle, self.drain)
