"""What problem reports hold about a resident, for their export and erasure, and the sweep.

:func:`held` gathers a conversation's reports (records, queued and failed entries, their retry
state), its subscriptions to requests' updates and the markers of updates it was told, with
where each lives; :mod:`bot.residents.rights` exports and removes them with the rest of the
conversation. :func:`stale` gathers the reports made before a cut-off (the profile's
``retention.problem_reports``) and their makers' subscriptions to them, for the daily sweep.
The council's own copy of a report (in its back office) is the council's to keep or erase.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio

from bot.reports.store import ReportStore

__all__ = ["Held", "held", "stale"]


@dataclass
class Held:
    """Reports' data of one or more conversations and where it lives.

    Attributes:
        export: JSON-ready data for the resident.
        keys: Keys deleted whole.
        stream_entries: Stream -> entry ids to delete.
        sorted_set_members: Sorted set -> members to remove.
        set_members: Set -> members to remove.
        hash_fields: Hash -> fields to delete.
    """

    export: dict[str, Any] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    stream_entries: dict[str, list[str]] = field(default_factory=dict)
    sorted_set_members: dict[str, list[str]] = field(default_factory=dict)
    set_members: dict[str, list[str]] = field(default_factory=dict)
    hash_fields: dict[str, list[str]] = field(default_factory=dict)

    def count(self) -> int:
        """How many reports."""
        return len(self.export.get("reports", []))


def _add(mapping: dict[str, list[str]], name: str, *values: str) -> None:
    found = mapping.setdefault(name, [])
    found += [v for v in values if v not in found]


async def _report(store: ReportStore, found: Held, report_id: str) -> dict[str, Any] | None:
    record_key = store.key("report", report_id)
    data: dict[str, str] = await store.redis.hgetall(record_key)
    found.keys += [record_key, store.key("enqueued", report_id)]
    _add(found.sorted_set_members, store.key("made"), report_id)
    if not data:
        return None
    exported: dict[str, Any] = {k: v for k, v in data.items() if k != "report"}
    if "report" in data:
        exported["report"] = json.loads(data["report"])
    return exported


async def _subscription(
    store: ReportStore, found: Held, conversation_id: str, request_id: str
) -> dict[str, Any] | None:
    subscribers = store.key("subscribers", request_id)
    raw = await store.redis.hget(subscribers, conversation_id)
    _add(found.hash_fields, subscribers, conversation_id)
    _add(found.set_members, store.key("following", conversation_id), request_id)
    if await store.redis.hlen(subscribers) <= 1:  # nobody else follows it: stop asking
        _add(found.sorted_set_members, store.key("followed"), request_id)
        found.keys.append(store.key("last", request_id))
    return {"service_request_id": request_id, **json.loads(raw)} if raw else None


async def _entries(
    store: ReportStore, found: Held, name: str, conversation_ids: set[str]
) -> list[dict[str, str]]:
    stream = store.key(name)
    rows: Any = await store.redis.xrange(stream)
    mine = []
    for entry_id, fields in rows:
        if fields.get("conversation_id") in conversation_ids:
            mine.append({"id": entry_id, **fields})
            _add(found.stream_entries, stream, entry_id)
            if name == "outbox":  # its retry schedule (bot.channels.stream.Retries)
                _add(found.hash_fields, f"{stream}:retries", entry_id)
                _add(found.sorted_set_members, f"{stream}:due", entry_id)
    return mine


async def held(client: redis.asyncio.Redis, namespace: str, conversation_id: str) -> Held:
    """Everything problem reports hold about ``conversation_id``."""
    store = ReportStore(client, namespace)
    found = Held()
    reports = []
    for report_id in await store.conversation_reports(conversation_id):
        exported = await _report(store, found, report_id)
        if exported is not None:
            reports.append({"report_id": report_id, **exported})
    following = store.key("following", conversation_id)
    subscriptions = []
    for request_id in sorted(await client.smembers(following)):
        subscription = await _subscription(store, found, conversation_id, request_id)
        if subscription is not None:
            subscriptions.append(subscription)
    told = store.key("told", conversation_id)
    waiting = store.key("held", conversation_id)
    _add(found.sorted_set_members, store.key("held"), conversation_id)
    found.export = {
        "reports": reports,
        "subscriptions": subscriptions,
        "updates_told": sorted(await client.smembers(told)),
        "held_for_the_window": [
            dict(zip(pairs[::2], pairs[1::2], strict=True)).get("text", "")
            for pairs in map(json.loads, await client.lrange(waiting, 0, -1))
        ],
        "queued": await _entries(store, found, "outbox", {conversation_id}),
        "failed": await _entries(store, found, "failed", {conversation_id}),
    }
    found.keys += [store.key("conversation", conversation_id), following, told, waiting]
    return found


async def stale(client: redis.asyncio.Redis, namespace: str, before: float) -> Held:
    """Reports made before ``before`` (Unix seconds) and their makers' subscriptions."""
    store = ReportStore(client, namespace)
    found = Held()
    old: list[str] = await client.zrangebyscore(store.key("made"), "-inf", f"({before}")
    reports = []
    for report_id in old:
        record = await store.get(report_id)
        await _report(store, found, report_id)
        reports.append({"report_id": report_id})
        if record is None:
            continue
        conversation = record.report.conversation_id
        _add(found.set_members, store.key("conversation", conversation), report_id)
        if record.reference:
            await _subscription(store, found, conversation, record.reference)
    found.export = {"reports": reports}
    return found
