"""Supervisor reports (``/reports/``): handoff volume, containment, response times, breaches.

Figures cover the cases opened in a period (default: the last 30 days, ``?days=N``, at most
366):

* volume by channel, topic and day;
* containment: the share of conversations the bot finished without a person,
  ``1 - conversations with a handoff / conversations``. The Rasa server's event broker
  (:mod:`bot.handoff.broker`) counts conversations into ``{ns}:stats:conversations:{YYYY-MM-DD}``
  (a resident writing on a day is one conversation that day); days without a count make
  containment unknown (``null``);
* first-response and resolution times (wall-clock minutes from opening to the first agent
  reply / to closing), p50 and p90, nearest-rank;
* service-level breaches per target, against the targets of the agent console;
* the top unanswered questions: the message that opened each low-confidence and out-of-scope
  handoff, with names, addresses, postcodes, phone numbers, e-mails and long numbers replaced
  by placeholders before it was stored for reporting (:mod:`bot.handoff.questions`), grouped
  by their lower-cased words (to feed the knowledge base);
* clarifications: how often the bot asked "Did you mean...?" instead of guessing
  (:mod:`bot.knowledge.clarifications`).

``/reports/export.json`` and ``/reports/export.csv`` give the same figures; exports are audited.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.handoff.questions import UnansweredQuestions
from bot.handoff.queue import HandoffQueue
from bot.handoff.sla import SlaPolicy, evaluate
from bot.keys import key
from bot.knowledge import clarifications
from bot.web import audit
from bot.web.agent import QUEUE, SLA_POLICY
from bot.web.app import NAMESPACE, REDIS, ConsoleApp, add_nav, app_of, render, require_role

__all__ = ["Report", "bar_chart", "build_report", "percentile", "setup"]

_MAX_DAYS = 366
_TOP_QUESTIONS = 20
# punctuation goes, except what placeholders such as "[postcode]" are written with
_WORDS = re.compile(r"[^\w\s'\[\]]+")
_CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (``share`` in 0..1) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(share * len(ordered)), 1)
    return ordered[rank - 1]


@dataclass
class Report:
    """Handoff figures for a period (see the module docstring for definitions)."""

    start: datetime
    end: datetime
    handoffs: int = 0
    conversations: int = 0
    containment: float | None = None
    by_channel: dict[str, int] = field(default_factory=dict)
    by_topic: dict[str, int] = field(default_factory=dict)
    by_day: dict[str, int] = field(default_factory=dict)
    first_response_minutes: dict[str, float | None] = field(default_factory=dict)
    resolution_minutes: dict[str, float | None] = field(default_factory=dict)
    breaches: dict[str, int] = field(default_factory=dict)
    unanswered: list[tuple[str, int]] = field(default_factory=list)
    clarifications: int = 0

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "handoffs": self.handoffs,
            "conversations": self.conversations,
            "containment": self.containment,
            "volume": {"channel": self.by_channel, "topic": self.by_topic, "day": self.by_day},
            "first_response_minutes": self.first_response_minutes,
            "resolution_minutes": self.resolution_minutes,
            "sla_breaches": self.breaches,
            "top_unanswered": [{"question": q, "count": n} for q, n in self.unanswered],
            "clarifications": self.clarifications,
        }

    def to_csv(self) -> str:
        """The report as ``section,key,value`` rows."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["section", "key", "value"])
        rows: list[tuple[str, str, Any]] = [
            ("period", "start", self.start.isoformat()),
            ("period", "end", self.end.isoformat()),
            ("totals", "handoffs", self.handoffs),
            ("totals", "conversations", self.conversations),
            ("totals", "containment", "" if self.containment is None else self.containment),
            ("totals", "clarifications", self.clarifications),
        ]
        for section, values in (
            ("channel", self.by_channel),
            ("topic", self.by_topic),
            ("day", self.by_day),
            ("first_response_minutes", self.first_response_minutes),
            ("resolution_minutes", self.resolution_minutes),
            ("sla_breaches", self.breaches),
        ):
            rows += [(section, k, "" if v is None else v) for k, v in values.items()]
        rows += [("top_unanswered", q, n) for q, n in self.unanswered]
        for section, name, value in rows:
            writer.writerow([section, _csv_safe(str(name)), value])
        return out.getvalue()


def _csv_safe(text: str) -> str:
    # Residents' words end up in spreadsheets: never let a cell start a formula.
    return "'" + text if text.startswith(_CSV_FORMULA) else text


def _minutes(start: str, end: str | None) -> float | None:
    if not end:
        return None
    delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    return round(delta.total_seconds() / 60, 1)


async def build_report(
    queue: HandoffQueue, policy: SlaPolicy, namespace: str, start: datetime, end: datetime
) -> Report:
    """Compute the report for cases opened in ``[start, end)``."""
    report = Report(start, end)
    ids = await queue.case_ids_between(start, end)
    first: list[float] = []
    resolution: list[float] = []
    breaches: Counter[str] = Counter()
    questions: Counter[str] = Counter()
    conversations: set[str] = set()
    channels: Counter[str] = Counter()
    topics: Counter[str] = Counter()
    days: Counter[str] = Counter()
    for offset in range(0, len(ids), 500):
        batch = ids[offset : offset + 500]
        records = await queue.get_many(batch)
        for record, meta in zip(records, await queue.metas(batch), strict=True):
            conversations.add(record.conversation_id)
            channels[record.channel] += 1
            topics[record.topic] += 1
            days[record.created_at[:10]] += 1
            if (minutes := _minutes(record.created_at, meta.get("first_response_at"))) is not None:
                first.append(minutes)
            if (minutes := _minutes(record.created_at, meta.get("closed_at"))) is not None:
                resolution.append(minutes)
            for state in evaluate(policy, record, meta, end):
                breaches[state.kind] += state.breached
        for text in await UnansweredQuestions(queue.redis, queue.namespace).questions(records):
            questions[" ".join(_WORDS.sub(" ", text.lower()).split())] += 1
    report.handoffs = len(ids)
    report.by_channel = dict(channels.most_common())
    report.by_topic = dict(topics.most_common())
    report.by_day = dict(sorted(days.items()))
    report.first_response_minutes = {"p50": percentile(first, 0.5), "p90": percentile(first, 0.9)}
    report.resolution_minutes = {
        "p50": percentile(resolution, 0.5),
        "p90": percentile(resolution, 0.9),
    }
    report.breaches = {kind: breaches[kind] for kind in ("first_response", "resolution")}
    report.unanswered = questions.most_common(_TOP_QUESTIONS)
    report.conversations = await _conversations(queue, namespace, start, end)
    report.clarifications = await clarifications.total(queue.redis, namespace, start, end)
    if report.conversations:
        contained = 1 - len(conversations) / report.conversations
        report.containment = round(max(contained, 0.0), 3)
    return report


async def _conversations(
    queue: HandoffQueue, namespace: str, start: datetime, end: datetime
) -> int:
    day, keys = start.date(), []
    while day <= (end - timedelta(microseconds=1)).date():
        keys.append(key(namespace, "stats", "conversations", day.isoformat()))
        day += timedelta(days=1)
    counts = await queue.redis.mget(keys) if keys else []
    return sum(int(c) for c in counts if c)


def bar_chart(title: str, values: dict[str, int]) -> dict[str, Any]:
    """A horizontal bar chart for ``reports/_chart.html`` (no inline styles).

    Each bar's ``share`` is its length in percent of the longest, so the chart scales to any
    width: the page reflows down to 320 px.
    """
    top = max(values.values(), default=0) or 1
    bars = [
        {"label": label, "value": value, "share": round(100 * value / top, 2)}
        for label, value in values.items()
    ]
    return {"title": title, "bars": bars}


def _period(request: Request) -> tuple[datetime, datetime]:
    try:
        days = int(request.query_params.get("days", "30"))
    except ValueError:
        raise HTTPException(400, "days must be a whole number.") from None
    if not 1 <= days <= _MAX_DAYS:
        raise HTTPException(400, f"days must be between 1 and {_MAX_DAYS}.")
    end = datetime.now(UTC)
    return end - timedelta(days=days), end


async def _report(request: Request) -> Report:
    app = app_of(request)
    policy = app[SLA_POLICY] if SLA_POLICY in app else SlaPolicy()
    queue = app[QUEUE] if QUEUE in app else HandoffQueue(app[REDIS], app[NAMESPACE])
    return await build_report(queue, policy, app[NAMESPACE], *_period(request))


@require_role("supervisor")
async def reports_page(request: Request) -> Response:
    """The supervisor's report page with charts."""
    report = await _report(request)
    charts = [
        bar_chart("Handoffs by channel", report.by_channel),
        bar_chart("Handoffs by topic", dict(list(report.by_topic.items())[:15])),
        bar_chart("Handoffs by day", report.by_day),
    ]
    days = request.query_params.get("days", "30")
    await audit.record(request, "report.view", "report", "handoff", {"days": int(days)})
    return render(request, "reports/index.html", {"r": report, "charts": charts, "days": days})


@require_role("supervisor")
async def export_json(request: Request) -> Response:
    """The report as JSON."""
    report = await _report(request)
    await audit.record(request, "report.export", "report", "handoff", {"format": "json"})
    return JSONResponse(report.to_json())


@require_role("supervisor")
async def export_csv(request: Request) -> Response:
    """The report as CSV (a download)."""
    report = await _report(request)
    await audit.record(request, "report.export", "report", "handoff", {"format": "csv"})
    return Response(
        report.to_csv(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="handoff-report.csv"'},
    )


def setup(app: ConsoleApp) -> None:
    """Add the supervisor reports to the app."""
    app.add_route("/reports/", reports_page)
    app.add_route("/reports/export.json", export_json)
    app.add_route("/reports/export.csv", export_csv)
    add_nav(app, "Reports", "/reports/", "supervisor")
