"""The retention sweep: each kind of residents' data goes once its period is up, nothing sooner.

Closed handoff cases count from when they were closed; failed sends and dead letters, audit
entries and missed-bin reports from when they were written; conversations from their last
message; the reports' copies of unanswered questions from when they were kept. An open case,
a conversation still handed off to a person and anything within its period stay.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import redis.asyncio

from bot.bins.missed import MissedReports
from bot.bins.model import BinType
from bot.handoff.questions import RETENTION_SECONDS
from bot.handoff.queue import HandoffQueue
from bot.handoff.record import HandoffRecord
from bot.knowledge.review import ReviewQueue
from bot.residents.rights import Layout, Retention, sweep
from residents.test_rights import cleanup, layout

__all__ = ["cleanup", "layout"]

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
DAY = 86_400


def _record(sender: str, opened: datetime) -> HandoffRecord:
    return HandoffRecord(
        conversation_id=f"sms:+441632960000:{sender}",
        channel="sms",
        account="+441632960000",
        sender=sender,
        reason="complaint",
        topic="council_tax",
        priority="P2",
        team="revenues",
        created_at=opened.isoformat(),
        transcript=[
            {"role": "resident", "text": f"complaint from {sender}", "at": opened.isoformat()}
        ],
    )


async def test_sweep_removes_only_what_is_past_its_period(
    async_redis: redis.asyncio.Redis, namespace: str, layout: Layout
) -> None:
    now = T0
    queue = HandoffQueue(async_redis, namespace, clock=lambda: now)
    old_closed = await queue.open(_record("+447700900001", T0))
    old_open = await queue.open(_record("+447700900002", T0))
    recent_closed = await queue.open(_record("+447700900003", T0))
    assert await queue.resolve(old_closed, "amy")
    now = T0 + timedelta(days=20)
    assert await queue.resolve(recent_closed, "amy")
    failed = f"{namespace}:outbox:failed"
    old_id = f"{int(T0.timestamp() * 1000)}-0"
    await async_redis.xadd(failed, {"conversation_id": "sms:x:+447700900001"}, id=old_id)
    recent_id = f"{int((T0 + timedelta(days=20)).timestamp() * 1000)}-0"
    await async_redis.xadd(failed, {"conversation_id": "sms:x:+447700900003"}, id=recent_id)

    retention = Retention(handoff_days=15, failed_days=10)
    removed = await sweep(async_redis, layout, retention, T0 + timedelta(days=25))

    assert (removed["handoff_cases"], removed["failed_messages"]) == (1, 1)
    assert await queue.get(old_closed) is None
    assert await queue.transcript(old_closed) == []
    assert old_closed not in await async_redis.zrange(f"{namespace}:handoff:cases", 0, -1)
    assert await queue.get(old_open) is not None  # still open: never swept
    assert await queue.get(recent_closed) is not None  # closed 5 days ago
    assert [e for e, _ in await async_redis.xrange(failed)] == [recent_id]
    again = await sweep(async_redis, layout, retention, T0 + timedelta(days=25))
    assert (again["handoff_cases"], again["failed_messages"]) == (0, 0)


async def _tracker(client: redis.asyncio.Redis, layout: Layout, sender: str, at: datetime) -> str:
    conversation = f"sms:+441632960000:{sender}"
    events = [
        {
            "event": "action",
            "name": "action_listen",
            "timestamp": (at - timedelta(days=3)).timestamp(),
        },
        {"event": "user", "text": f"hello from {sender}", "timestamp": at.timestamp()},
    ]
    await client.set(layout.tracker_prefix + conversation, json.dumps({"events": events}))
    return conversation


async def test_sweep_applies_the_period_of_each_kind_of_data(
    async_redis: redis.asyncio.Redis, layout: Layout, cleanup: None
) -> None:
    now = T0 + timedelta(days=100)
    retention = Retention(
        conversation_days=60, missed_bin_days=30, audit_days=90, report_question_days=50
    )
    # conversations: last message 70 and 10 days ago; a third 70 days ago, still handed off
    old_talk = await _tracker(async_redis, layout, "+447700900011", now - timedelta(days=70))
    new_talk = await _tracker(async_redis, layout, "+447700900012", now - timedelta(days=10))
    handed = await _tracker(async_redis, layout, "+447700900013", now - timedelta(days=70))
    await async_redis.set(layout.key("handoff", "conversation", handed), "case-1")
    window = layout.key("window", "last")
    await async_redis.zadd(window, {old_talk: (now - timedelta(days=70)).timestamp()})
    # a conversation whose tracker has expired: only the window remembers it
    gone = "sms:+441632960000:+447700900014"
    await async_redis.zadd(window, {gone: (now - timedelta(days=90)).timestamp()})
    await async_redis.hset(layout.key("delivery", old_talk), "SM1", "{}")
    # missed-bin reports made 40 and 5 days ago
    reports = MissedReports(async_redis, layout.namespace, retention=365)
    old_report = await reports.record(
        "10001", BinType.FOOD, date(2026, 3, 1), "sms", now - timedelta(days=40)
    )
    new_report = await reports.record(
        "10002", BinType.FOOD, date(2026, 4, 1), "sms", now - timedelta(days=5)
    )
    # audit entries written 120 and 1 days ago (ids carry the time, as the AuditLog's do)
    audit = layout.key("audit")
    for days in (120, 1):
        entry_id = f"{int((now - timedelta(days=days)).timestamp() * 1000)}-0"
        await async_redis.xadd(audit, {"actor": "amy", "action": "login"}, id=entry_id)
    # reports' questions kept 60 days and 1 day ago (their expiry tells their age)
    old_question = layout.key("stats", "question", "case-old")
    new_question = layout.key("stats", "question", "case-new")
    await async_redis.set(old_question, "q", ex=RETENTION_SECONDS - 60 * DAY)
    await async_redis.set(new_question, "q", ex=RETENTION_SECONDS - DAY)

    # the review queue: a pending and a decided candidate of the old conversation
    review = ReviewQueue(async_redis, layout.namespace)
    pending = await review.record_choice(old_talk, "can i rent an allotment", "t", "")
    decided = await review.record_choice(old_talk, "jobs at the council", "t", "")
    kept = await review.record_choice(new_talk, "school places", "t", "")
    assert pending is not None and decided is not None and kept is not None
    await review.decide(decided.id, "out_of_scope", "editor.ed")

    removed = await sweep(async_redis, layout, retention, now)

    assert removed == {
        "handoff_cases": 0,
        "failed_messages": 0,
        "conversations": 2,
        "missed_bin_reports": 1,
        "audit_entries": 1,
        "report_questions": 1,
        "review_candidates": 2,
        "problem_reports": 0,
        "report_photos": 0,
    }
    assert await review.get(pending.id) is None
    unlinked = await review.get(decided.id)
    assert unlinked is not None
    assert (unlinked.conversation_id, unlinked.label) == ("", "out_of_scope")
    assert await review.training_examples() == {"out_of_scope": ["jobs at the council"]}
    assert await review.of_conversation(old_talk) == []
    assert [c.id for c in await review.of_conversation(new_talk)] == [kept.id]
    assert not await async_redis.exists(layout.tracker_prefix + old_talk)
    assert not await async_redis.exists(layout.key("delivery", old_talk))
    assert await async_redis.zrange(window, 0, -1) == []
    assert await async_redis.exists(layout.tracker_prefix + new_talk)
    assert await async_redis.exists(layout.tracker_prefix + handed)
    assert await reports.get(old_report) is None
    assert await reports.get(new_report) is not None
    [(kept, _)] = await async_redis.xrange(audit)
    assert kept == f"{int((now - timedelta(days=1)).timestamp() * 1000)}-0"
    assert not await async_redis.exists(old_question)
    assert await async_redis.exists(new_question)
    again = await sweep(async_redis, layout, retention, now)
    assert set(again.values()) == {0}
