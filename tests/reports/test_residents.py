"""Residents' rights over problem reports: export, erasure and the retention sweep."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from bot.channels.window import window_key
from bot.profile import Retention
from bot.reports.notify import ResidentNotifier
from bot.reports.store import Subscriber, subscribe
from bot.residents.rights import Layout, erase, export, find, leftovers, sweep
from bot.web.audit import AuditLog
from tests.reports.conftest import RigFactory, make_report


@pytest.fixture
def layout(namespace: str) -> Layout:
    prefix = "rt" + uuid.uuid4().hex[:10]
    return Layout(namespace, f"{prefix}:tracker:", f"{prefix}:lock:")


async def test_a_residents_reports_and_subscriptions_are_exported_and_erased(
    rig: RigFactory, layout: Layout
) -> None:
    r = await rig()
    mine, theirs = make_report(1), make_report(2, description="Another hole")
    r.standin.faults.status = 400  # the second report is refused: a failed entry too
    await r.run(theirs)
    r.standin.faults.status = 0
    await r.run(mine)
    record = await r.record(mine.report_id)
    assert record.reference
    # resident 2 joined resident 1's request as a duplicate
    await subscribe(
        r.redis, r.namespace, record.reference, Subscriber.of(theirs, record.reference, 0)
    )

    resident = await find(r.redis, layout, mine.conversation_id)
    held = (await export(r.redis, layout, resident))["conversations"][0]["problem_reports"]
    (report,) = held["reports"]
    assert report["report"]["description"] == mine.description
    assert report["status"] == "submitted" and report["reference"] == record.reference
    assert [s["service_request_id"] for s in held["subscriptions"]] == [record.reference]
    assert held["updates_told"] == [f"report:{mine.report_id}:done"]

    await erase(r.redis, layout, resident, AuditLog(r.redis, r.namespace), actor="dpo")
    assert await leftovers(r.redis, layout, resident) == []
    assert await r.store.get(mine.report_id) is None
    # the other resident keeps their report, failure and subscription
    other = await find(r.redis, layout, theirs.conversation_id)
    kept = (await export(r.redis, layout, other))["conversations"][0]["problem_reports"]
    assert [x["report_id"] for x in kept["reports"]] == [theirs.report_id]
    assert len(kept["failed"]) == 1 and len(kept["subscriptions"]) == 1
    assert await r.store.subscribers(record.reference) != []


async def test_reports_older_than_their_retention_are_swept(
    rig: RigFactory, layout: Layout
) -> None:
    r = await rig()
    old = make_report(1, created_at=(datetime.now(UTC) - timedelta(days=400)).timestamp())
    new = make_report(2, created_at=datetime.now(UTC).timestamp())
    await r.run(old, new)
    done = await sweep(r.redis, layout, Retention(problem_report_days=365), datetime.now(UTC))
    assert done["problem_reports"] == 1
    assert await r.store.get(old.report_id) is None
    assert await r.store.get(new.report_id) is not None
    assert await r.store.conversation_reports(old.conversation_id) == []
    record = await r.store.get(new.report_id)
    assert record is not None
    (follower,) = await r.store.subscribers(record.reference)
    assert follower.conversation_id == new.conversation_id


async def test_a_message_held_for_a_closed_window_is_exported_and_erased(
    rig: RigFactory, layout: Layout
) -> None:
    r = await rig()
    report = make_report(3)
    await r.run(report)
    record = await r.store.get(report.report_id)
    assert record is not None
    await r.redis.zadd(window_key(r.namespace), {report.conversation_id: 1.0})  # long ago
    notifier = ResidentNotifier(r.redis, r.namespace, r.worker.notifier.wording)
    await notifier.tell(
        Subscriber.of(report, record.reference, 0), "x|1", "utter_report_update_closed",
        reference=record.reference, service_name="Pothole", notes="", has_notes=False,
    )  # fmt: skip
    resident = await find(r.redis, layout, report.conversation_id)
    held = (await export(r.redis, layout, resident))["conversations"][0]["problem_reports"]
    (text,) = held["held_for_the_window"]
    assert "the council has closed it" in text
    await erase(r.redis, layout, resident, AuditLog(r.redis, r.namespace), actor="dpo")
    assert await leftovers(r.redis, layout, resident) == []
    assert await r.redis.zscore(r.store.key("held"), report.conversation_id) is None
    assert await r.redis.exists(r.store.key("held", report.conversation_id)) == 0
