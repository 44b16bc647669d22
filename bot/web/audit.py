"""The console's audit log: who did what, when, to which object, from where, with what outcome.

An outcome is ``ok``, ``refused`` (the console said no) or ``failed`` (a wrong password and the
like). Refusals are entries too (see :mod:`bot.web.app`): ``access.unauthenticated``,
``access.denied``, ``csrf.refused``, ``login.failure``, ``login.throttled``. Objects are named
by id or path, never by what a resident wrote.

Entries are appended to the Redis stream ``{ns}:audit``. Entries older than the retention
period (``retention_days``) are trimmed whenever a new one is written, because actor names and
client addresses are personal data.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio
from starlette.requests import Request

from bot.keys import key
from bot.web.accounts import User
from bot.web.appkey import AppKey

__all__ = ["AUDIT", "OUTCOMES", "AuditEntry", "AuditLog", "client_ip", "record"]

OUTCOMES: tuple[str, ...] = ("ok", "refused", "failed")
"""How an audited action ended."""


@dataclass(frozen=True)
class AuditEntry:
    """One audit log entry.

    Attributes:
        entry_id: The stream id.
        at: When (UTC).
        actor: Username (or ``"cli"``; the attempted username for failed sign-ins).
        action: What happened, e.g. ``"login.success"`` or ``"kb.publish"``.
        object_type: Kind of object acted on, e.g. ``"user"``.
        object_id: Which object.
        ip: Client address (empty outside web requests).
        detail: Extra facts (never passwords or message bodies).
        outcome: One of :data:`OUTCOMES`.
    """

    entry_id: str
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    ip: str
    detail: dict[str, Any]
    outcome: str = "ok"


class AuditLog:
    """Append-only audit log in a Redis stream.

    Args:
        redis: Asyncio client with ``decode_responses=True``.
        namespace: Key namespace.
        retention_days: Entries older than this are removed.
        anonymous_refusals_per_minute: Refusals of requests without a session recorded per
            client address and minute (see :meth:`admit_anonymous`).
        clock: Returns epoch seconds.
    """

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        namespace: str = "cr",
        *,
        retention_days: int = 365,
        anonymous_refusals_per_minute: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._ns = namespace
        self._key = key(namespace, "audit")
        self.retention_days = retention_days
        self.anonymous_refusals_per_minute = anonymous_refusals_per_minute
        self._clock = clock

    async def record(
        self,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        detail: Mapping[str, Any] | None = None,
        *,
        ip: str = "",
        outcome: str = "ok",
    ) -> str:
        """Append an entry and return its stream id.

        Raises:
            ValueError: ``outcome`` is not one of :data:`OUTCOMES`.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        now = self._clock()
        entry_id: str = await self._redis.xadd(
            self._key,
            {
                "at": repr(now),
                "actor": actor,
                "action": action,
                "object_type": object_type,
                "object_id": object_id,
                "ip": ip,
                "outcome": outcome,
                "detail": json.dumps(dict(detail or {}), sort_keys=True, default=str),
            },
        )
        # Stream ids carry the Redis server's clock, so the cut-off is measured from the new id.
        oldest_ms = int(entry_id.split("-")[0]) - self.retention_days * 86_400_000
        await self._redis.xtrim(self._key, minid=f"{max(oldest_ms, 0)}-0", approximate=False)
        return entry_id

    async def admit_anonymous(self, ip: str) -> bool:
        """Whether to record one more refusal of an anonymous request from ``ip`` this minute.

        Anyone can send requests without a session; recording each one would let a stranger
        fill Redis. The first refusal over the limit is recorded once as ``audit.limited``.
        """
        minute = int(self._clock() // 60)
        counter = key(self._ns, "audit", "anonymous", ip or "-", str(minute))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(counter)
            pipe.expire(counter, 120)
            count, _ = await pipe.execute()
        if int(count) == self.anonymous_refusals_per_minute + 1:
            detail = {"per_minute": self.anonymous_refusals_per_minute}
            await self.record(
                "anonymous", "audit.limited", "address", ip, detail, ip=ip, outcome="refused"
            )
        return int(count) <= self.anonymous_refusals_per_minute

    async def recent(
        self,
        *,
        limit: int = 100,
        actor: str = "",
        object_type: str = "",
        object_id: str = "",
        action: str = "",
        outcome: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        scan: int = 50_000,
    ) -> list[AuditEntry]:
        """Return up to ``limit`` entries, newest first, matching every filter given.

        ``action`` matches itself and the actions under it (``login`` matches
        ``login.failure``); ``since``/``until`` bound the entry's time (inclusive / exclusive).
        At most the ``scan`` newest entries are examined, so a filter matching nothing stays
        quick on a year of history.
        """
        found: list[AuditEntry] = []
        end = "+"
        scanned = 0
        while len(found) < limit and scanned < scan:
            count = min(500, scan - scanned)
            batch = await self._redis.xrevrange(self._key, max=end, count=count)
            scanned += len(batch)
            for entry_id, fields in batch:
                entry = _entry(entry_id, fields)
                if (
                    (not actor or entry.actor == actor)
                    and (not object_type or entry.object_type == object_type)
                    and (not object_id or entry.object_id == object_id)
                    and (
                        not action
                        or entry.action in {action}
                        or entry.action.startswith(f"{action}.")
                    )
                    and (not outcome or entry.outcome == outcome)
                    and (since is None or entry.at >= since)
                    and (until is None or entry.at < until)
                ):
                    found.append(entry)
                    if len(found) == limit:
                        break
            if len(batch) < count:
                break
            end = f"({batch[-1][0]}"
        return found


AUDIT = AppKey[AuditLog]("audit")
"""Application key of the console's :class:`AuditLog`."""


def _entry(entry_id: str, fields: Mapping[str, str]) -> AuditEntry:
    return AuditEntry(
        entry_id=entry_id,
        at=datetime.fromtimestamp(float(fields["at"]), UTC),
        actor=fields["actor"],
        action=fields["action"],
        object_type=fields["object_type"],
        object_id=fields["object_id"],
        ip=fields.get("ip", ""),
        detail=json.loads(fields.get("detail", "{}")),
        outcome=fields.get("outcome", "ok"),
    )


def client_ip(request: Request) -> str:
    """Return the client address of a request.

    That is the TCP peer, unless ``python -m bot.web`` was told to trust a proxy
    (``COUNCIL_TRUSTED_PROXIES``): uvicorn then puts the proxy's ``X-Forwarded-For`` client here.
    """
    return request.client.host if request.client else ""


async def record(
    request: Request,
    action: str,
    object_type: str,
    object_id: str,
    detail: Mapping[str, Any] | None = None,
    *,
    actor: str | None = None,
    outcome: str = "ok",
) -> str:
    """Audit something done (or refused) through a console request.

    The actor is the signed-in user (``anonymous`` without one) unless ``actor`` is given; the
    client IP comes from the request. Refusals of anonymous requests are recorded up to
    :attr:`AuditLog.anonymous_refusals_per_minute` per address (returns "" past that). Outside
    requests use :meth:`AuditLog.record`.
    """
    user: User | None = getattr(request.state, "user", None)
    who = actor if actor is not None else (user.username if user else "anonymous")
    log: AuditLog = request.app[AUDIT]
    ip = client_ip(request)
    if outcome == "refused" and user is None and not await log.admit_anonymous(ip):
        return ""
    return await log.record(who, action, object_type, object_id, detail, ip=ip, outcome=outcome)
