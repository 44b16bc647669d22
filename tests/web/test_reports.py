"""Supervisor reports: figures, exports, role checks."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.handoff.queue import HandoffQueue
from bot.handoff.record import HandoffRecord
from bot.handoff.sla import SlaPolicy
from bot.knowledge import clarifications
from bot.testing.console import Login
from bot.testing.handoff import handoff_record
from bot.web.agent import QUEUE
from bot.web.app import AUDIT, NAMESPACE, REDIS, ConsoleApp
from bot.web.reports import bar_chart, build_report, percentile


def record(sender: str, *, minutes_ago: float, **fields: Any) -> HandoffRecord:
    fields.setdefault("text", "talk to a person")
    return handoff_record(sender, account="acc", minutes_ago=minutes_ago, **fields)


@pytest.fixture
def console_sections() -> tuple[str, ...]:
    return ("bot.web.agent", "bot.web.reports")


async def seed(app: ConsoleApp) -> HandoffQueue:
    queue = app[QUEUE]
    base = datetime.now(UTC)
    answered = record("1", minutes_ago=120)
    await queue.open(answered)
    queue.clock = lambda: base - timedelta(minutes=110)
    await queue.append_message(answered.conversation_id, "agent", "hello")
    queue.clock = lambda: base - timedelta(minutes=60)
    await queue.resolve(answered.case_id)
    queue.clock = lambda: datetime.now(UTC)
    for n in range(3):
        await queue.open(
            record(f"q{n}", minutes_ago=30, reason="low_confidence", text="=Where's the TIP?!")
        )
    await queue.open(record("t", minutes_ago=5, channel="telegram", topic="council_tax_pay"))
    # finding 10: what a resident typed about themselves never reaches a report
    private = "My name is Jo Bloggs, bin missed at 12 High Street AB1 2CD, call 07700 900123"
    await queue.open(record("p", minutes_ago=20, reason="out_of_scope", text=private))
    today = datetime.now(UTC).date().isoformat()
    await app[REDIS].set(f"{app[NAMESPACE]}:stats:conversations:{today}", 50)
    return queue


def test_percentile_and_chart() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5, 1, 3, 2, 4], 0.5) == 3
    assert percentile([float(n) for n in range(1, 11)], 0.9) == 9
    chart = bar_chart("t", {"a": 10, "b": 5, "c": 0})
    assert [b["share"] for b in chart["bars"]] == [100, 50, 0]


async def test_build_report(console_app: ConsoleApp) -> None:
    queue = await seed(console_app)
    end = datetime.now(UTC) + timedelta(seconds=1)
    report = await build_report(
        queue, SlaPolicy(), console_app[NAMESPACE], end - timedelta(days=1), end
    )
    assert report.handoffs == 6
    assert report.by_channel == {"whatsapp": 5, "telegram": 1}
    assert report.by_topic == {"bin_day": 5, "council_tax_pay": 1}
    assert report.containment == 0.88  # 6 of 50 conversations needed a person
    assert report.first_response_minutes == {"p50": 10.0, "p90": 10.0}
    assert report.resolution_minutes == {"p50": 60.0, "p90": 60.0}
    assert report.unanswered == [
        ("where's the tip", 3),
        ("my name is [name] bin missed at [address] [postcode] call [phone]", 1),
    ]


async def test_pages_and_exports(console_app: ConsoleApp, login: Login) -> None:
    await seed(console_app)
    agent = await login("agent", teams=("customer_services",))
    assert (await agent.get("/reports/")).status_code == 403
    assert (await agent.get("/reports/export.json")).status_code == 403
    supervisor = await login("supervisor")
    page = await supervisor.get("/reports/")
    html = page.text
    assert page.status_code == 200 and "<svg" in html and "style=" not in html
    assert 'class="bar"' in html and "88.0%" in html
    data = (await supervisor.get("/reports/export.json?days=7")).json()
    assert data["handoffs"] == 6 and data["volume"]["channel"]["telegram"] == 1
    assert data["top_unanswered"][0] == {"question": "where's the tip", "count": 3}
    response = await supervisor.get("/reports/export.csv")
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert ["totals", "handoffs", "6"] in rows and ["channel", "telegram", "1"] in rows
    for private in ("Jo Bloggs", "High Street", "AB1 2CD", "07700"):
        assert private not in html and private not in response.text
        assert private not in json.dumps(data)
    assert (await supervisor.get("/reports/?days=0")).status_code == 400
    exports = await console_app[AUDIT].recent(action="report.export")
    assert [e.detail["format"] for e in exports] == ["csv", "json"]


async def test_csv_cells_never_start_a_formula(console_app: ConsoleApp, login: Login) -> None:
    queue = console_app[QUEUE]
    await queue.open(record("x", minutes_ago=1, reason="out_of_scope", text="hi"))
    await queue.open(record("y", minutes_ago=1, reason="out_of_scope", topic="=cmd|x"))
    supervisor = await login("supervisor")
    text = (await supervisor.get("/reports/export.csv")).text
    assert "'=cmd|x" in text and "\n=cmd" not in text.replace(",", "\n")


async def test_clarifying_questions_are_counted_in_the_period(
    console_app: ConsoleApp, login: Login
) -> None:
    redis, namespace = console_app[REDIS], console_app[NAMESPACE]
    today = datetime.now(UTC).date()
    for day in (today, today, today - timedelta(days=3), today - timedelta(days=40)):
        await clarifications.count(redis, namespace, day)
    supervisor = await login("supervisor")
    assert (await supervisor.get("/reports/export.json?days=7")).json()["clarifications"] == 3
    assert (await supervisor.get("/reports/export.json?days=1")).json()["clarifications"] == 2
    rows = list(csv.reader(io.StringIO((await supervisor.get("/reports/export.csv")).text)))
    assert ["totals", "clarifications", "3"] in rows
    page = (await supervisor.get("/reports/?days=60")).text
    assert '<dd id="clarifications">4</dd>' in page
