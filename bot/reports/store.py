"""What Redis keeps about problem reports and the residents who follow them.

Keys (all built with :func:`bot.keys.key`, under the namespace's hash tag)::

    {ns}:reports:outbox                 stream of reports to submit (ReportOutbox, ReportWorker)
    {ns}:reports:enqueued:<report_id>   the outbox entry id (enqueue once per report)
    {ns}:reports:report:<report_id>     hash: report (JSON), conversation_id, status (queued |
                                        submitted | failed), created_at, attempted_at, token,
                                        reference, notice, error, updated_at,
                                        last_error (while retried: bot.reports.waiting),
                                        search_failed_at (a possibly posted report's
                                        search first failed), unconfirmed ("1": failed as
                                        possibly submitted)
    {ns}:reports:conversation:<conv>    set: the conversation's report ids
    {ns}:reports:made                   sorted set: report id -> created_at (retention)
    {ns}:reports:failed                 stream: reports that could not be delivered (agents)
    {ns}:reports:subscribers:<srid>     hash: conversation id -> Subscriber JSON
    {ns}:reports:following:<conv>       set: the service request ids a conversation follows
    {ns}:reports:followed               sorted set: service request id -> next poll (Unix s)
    {ns}:reports:last:<srid>            hash: status, notes, updated, at (the last state seen;
                                        at: its time, or when it was received)
    {ns}:reports:told:<conv>            set: "<srid>|<change>" markers of updates sent
    {ns}:reports:held:<conv>            list: messages held while the window is closed
                                        (bot.reports.notify: sent when it opens)
    {ns}:reports:held                   sorted set: conversation -> when first held

A report's and a subscription's personal data (the report, the conversation id) is exported
and erased by :mod:`bot.residents.rights` and swept after ``retention.problem_reports`` days.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio

from bot.keys import key
from bot.reports.model import ProblemReport

__all__ = [
    "ReportRecord",
    "ReportStore",
    "Subscriber",
    "subscribe",
]


@dataclass(frozen=True)
class Subscriber:
    """A conversation that gets a service request's updates.

    Attributes:
        conversation_id: The Rasa conversation.
        channel: Its channel (``whatsapp``, ``telegram``...).
        account: The council's account on it.
        sender: The resident's id on the channel.
        language: The conversation's language (``en`` | ``cy``).
        reference: The council's reference, as the resident was told it.
        service_name: The report's category, as the resident knows it.
        at: Unix seconds when they subscribed.
    """

    conversation_id: str
    channel: str
    account: str
    sender: str
    language: str = "en"
    reference: str = ""
    service_name: str = ""
    at: float = 0.0

    @classmethod
    def of(cls, report: ProblemReport, reference: str, at: float) -> Subscriber:
        """The resident who made ``report``."""
        return cls(
            report.conversation_id,
            report.channel,
            report.account,
            report.sender,
            report.language,
            reference,
            report.service_name,
            at,
        )

    def to_json(self) -> str:
        """For a Redis hash field."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Subscriber:
        """Read back :meth:`to_json`."""
        return cls(**json.loads(text))


@dataclass(frozen=True)
class ReportRecord:
    """A report's progress (the hash ``{ns}:reports:report:<id>``)."""

    report: ProblemReport
    status: str
    attempted_at: float = 0.0
    token: str = ""
    reference: str = ""
    notice: str = ""
    error: str = ""
    search_failed_at: float = 0.0
    unconfirmed: bool = False

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> ReportRecord:
        """Read a stored hash."""
        return cls(
            ProblemReport.from_json(data["report"]),
            data.get("status", "queued"),
            float(data.get("attempted_at") or 0),
            data.get("token", ""),
            data.get("reference", ""),
            data.get("notice", ""),
            data.get("error", ""),
            float(data.get("search_failed_at") or 0),
            data.get("unconfirmed") == "1",
        )


class ReportStore:
    """Reads and writes the keys above.

    Args:
        client: Asyncio Redis client (decoded strings).
        namespace: Key namespace.
    """

    def __init__(self, client: redis.asyncio.Redis, namespace: str = "cr") -> None:
        self.redis = client
        self.namespace = namespace

    def key(self, *parts: str) -> str:
        """A key of this store (``{ns}:reports:...``)."""
        return key(self.namespace, "reports", *parts)

    async def get(self, report_id: str) -> ReportRecord | None:
        """A report's record (None: unknown, or swept)."""
        data = await self.redis.hgetall(self.key("report", report_id))
        return ReportRecord.from_hash(data) if data and "report" in data else None

    async def update(self, report_id: str, **fields: str | float) -> None:
        """Set fields of a report's record."""
        await self.redis.hset(
            self.key("report", report_id), mapping={k: str(v) for k, v in fields.items()}
        )

    async def first_attempt(self, report_id: str, at: float) -> None:
        """Record when the report was first sent (kept: later attempts look for it first)."""
        await self.redis.hsetnx(self.key("report", report_id), "attempted_at", str(at))

    async def conversation_reports(self, conversation_id: str) -> list[str]:
        """Report ids of a conversation."""
        return sorted(await self.redis.smembers(self.key("conversation", conversation_id)))

    async def subscribers(self, service_request_id: str) -> list[Subscriber]:
        """Who follows a service request."""
        raw = await self.redis.hgetall(self.key("subscribers", service_request_id))
        return [Subscriber.from_json(v) for _, v in sorted(raw.items())]

    async def last_state(self, service_request_id: str) -> dict[str, str]:
        """The last state seen of a service request (empty: none yet)."""
        return dict(await self.redis.hgetall(self.key("last", service_request_id)))

    async def failed(self, count: int = 100) -> list[dict[str, str]]:
        """Reports that could not be delivered, newest first (for agents)."""
        rows: Any = await self.redis.xrevrange(self.key("failed"), count=count)
        return [{"id": entry_id, **fields} for entry_id, fields in rows]


async def subscribe(
    client: redis.asyncio.Redis,
    namespace: str,
    service_request_id: str,
    subscriber: Subscriber,
    *,
    status: str = "open",
    poll_at: float = 0.0,
) -> None:
    """Send ``subscriber`` the updates of ``service_request_id`` ("add me to that report").

    The request's state as known now (``status``, no notes) is recorded when none was, so the
    first poll tells nobody about a change that is not one. ``poll_at``: when the request is
    next checked (0: at the next poll).
    """
    store = ReportStore(client, namespace)
    async with client.pipeline(transaction=True) as pipe:
        pipe.hset(
            store.key("subscribers", service_request_id),
            subscriber.conversation_id,
            subscriber.to_json(),
        )
        pipe.sadd(store.key("following", subscriber.conversation_id), service_request_id)
        pipe.hsetnx(store.key("last", service_request_id), "status", status)
        if status == "open":
            pipe.zadd(store.key("followed"), {service_request_id: poll_at}, nx=True)
        await pipe.execute()
