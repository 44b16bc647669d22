"""Reports still being retried, for agents: the back office is down or refuses them.

:class:`~bot.reports.outbox.ReportWorker` keeps trying a report for hours before it fails
(and only then opens a console case). Meanwhile :func:`waiting_reports` lists the reports
whose next attempt is scheduled (``{ns}:reports:outbox:due``, with the failures in
``{ns}:reports:outbox:retries``) and that were confirmed more than ``older_than`` seconds
ago, each with the back office's last error (the record's ``last_error``, written by the
worker at each failure). :func:`waiting_problems` words them for the console's banner
(``/api/agent/reports``): counts, the oldest wait and the last error, no resident data.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis.asyncio

from bot.channels.stream import Retries
from bot.reports.model import ProblemReport
from bot.reports.store import ReportStore

__all__ = ["WAITING_AFTER", "WaitingReport", "waiting_problems", "waiting_reports"]

WAITING_AFTER = 600.0
"""Seconds after confirmation when a report still retried is shown to agents (the resident
is told at the same point that it takes longer)."""

_LOOKED_AT = 1000
"""Scheduled entries looked at (the oldest ones first)."""


@dataclass(frozen=True)
class WaitingReport:
    """A report the worker is still trying to deliver."""

    report_id: str
    service_name: str
    waited_seconds: float
    attempts: int
    last_error: str


async def waiting_reports(
    client: redis.asyncio.Redis,
    namespace: str,
    *,
    now: float | None = None,
    older_than: float = WAITING_AFTER,
) -> list[WaitingReport]:
    """Reports retried and confirmed more than ``older_than`` seconds ago, oldest first."""
    moment = time.time() if now is None else now
    store = ReportStore(client, namespace)
    stream = store.key("outbox")
    retries = Retries(client, stream)
    entries: list[str] = await client.zrange(retries.due_key, 0, _LOOKED_AT - 1)
    if not entries:
        return []
    async with client.pipeline(transaction=False) as pipe:
        for entry in entries:
            pipe.xrange(stream, entry, entry, count=1)
            pipe.hget(retries.state_key, entry)
        found = await pipe.execute()
    ids = [
        (rows[0][1].get("report_id", "") if rows else "", state)
        for rows, state in zip(found[::2], found[1::2], strict=True)
    ]
    async with client.pipeline(transaction=False) as pipe:
        for report_id, _ in ids:
            pipe.hmget(store.key("report", report_id), "report", "status", "last_error")
        records = await pipe.execute()
    waiting = []
    for (report_id, state), (text, status, last_error) in zip(ids, records, strict=True):
        if not text or status not in (None, "queued"):
            continue  # erased, or finished a moment ago
        report = ProblemReport.from_json(text)
        waited = moment - report.created_at
        if waited < older_than:
            continue
        try:
            attempts = int(json.loads(state)["attempts"]) if state else 0
        except (KeyError, TypeError, ValueError):
            attempts = 0
        waiting.append(
            WaitingReport(report_id, report.service_name, waited, attempts, last_error or "")
        )
    return sorted(waiting, key=lambda w: -w.waited_seconds)


def _duration(seconds: float) -> str:
    hours, minutes = divmod(int(seconds // 60), 60)
    said = [f"{hours} hour{'s' * (hours != 1)}"] if hours else []
    if minutes or not hours:
        said.append(f"{minutes} minute{'s' * (minutes != 1)}")
    return " ".join(said)


async def waiting_problems(
    client: redis.asyncio.Redis,
    namespace: str,
    *,
    now: float | None = None,
    older_than: float = WAITING_AFTER,
) -> list[str]:
    """Plain words for the console's banner ([] when no report waits that long)."""
    waiting = await waiting_reports(client, namespace, now=now, older_than=older_than)
    if not waiting:
        return []
    oldest = waiting[0]
    count = len(waiting)
    what = "1 problem report has" if count == 1 else f"{count} problem reports have"
    services = ", ".join(sorted({w.service_name for w in waiting}))
    last = max(waiting, key=lambda w: w.attempts).last_error.rstrip(". ") or "none recorded"
    return [
        f"{what} waited over {_duration(older_than)} for the council's back office "
        f"({services}; the oldest for {_duration(oldest.waited_seconds)}, "
        f"{oldest.attempts} attempts; last error: {last})"
    ]
