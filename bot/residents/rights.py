"""Residents' rights under UK GDPR: find, export and erase what is held about one resident.

A resident is looked up by a conversation id (``whatsapp:+441234567890:+447700900123``), a
phone number, an email address or a handoff case id. From that we find their conversations on
every channel and their handoff cases, then what each store keeps about them:

* Rasa trackers (``{tracker prefix}{conversation id}``, outside the namespace; the prefix follows
  ``endpoints.yml``) and Rasa's conversation locks;
* the inbox: de-duplication keys ``{ns}:inbox:seen:{channel}:{account}:{message id}`` (message
  ids read from the tracker and the inbox), entries of ``{ns}:inbox`` and ``{ns}:inbox:dead``;
* the messaging window (``{ns}:window:last``) and the daily "seen" markers of the reports
  (``{ns}:stats:seen:{day}:{conversation id}``);
* the outbox (``{ns}:outbox``), failed sends (``{ns}:outbox:failed``) and delivery states
  (``{ns}:delivery:{conversation id}``);
* handoff cases (:mod:`bot.handoff.queue`'s layout: record, messages, notes, timings, lease,
  queue and contact indexes, events, safeguarding alerts, service-level breaches);
* missed-bin reports whose reference the bot gave in the conversation.

:func:`erase` removes all of it and writes one ``resident.erase`` entry to the audit log, which
keeps no contact detail, only a reference and what was removed. :func:`leftovers` scans every
key of the namespace and the tracker store for the resident's ids and contact details, so an
erase can be verified (it reads every key, so the CLI runs it and a web request need not).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis.asyncio

from bot.config import load_yaml
from bot.errors import ConfigError
from bot.handoff.queue import contact_keys
from bot.handoff.record import HandoffRecord
from bot.keys import key

if TYPE_CHECKING:
    from bot.web.audit import AuditLog

__all__ = [
    "Erasure",
    "Layout",
    "Resident",
    "erase",
    "export",
    "find",
    "leftovers",
    "phone_digits",
]

_PHONE_CHANNELS = frozenset({"whatsapp", "sms"})
_NOT_DIGIT = re.compile(r"\D")
_MISSED_BIN_REFERENCE = re.compile(r"\bMB-\d{4}-\d{6}\b")
_STREAM_PAGE = 1000
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def phone_digits(text: str) -> str | None:
    """A phone number as international digits (UK ``07...`` becomes ``447...``), or None."""
    digits = _NOT_DIGIT.sub("", text)
    if digits.startswith("0"):
        digits = "44" + digits[1:]
    return digits if len(digits) >= 9 else None


def _glob(text: str) -> str:
    """``text`` as a literal inside a Redis MATCH pattern."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


@dataclass(frozen=True)
class Layout:
    """Where the stores keep their keys.

    Attributes:
        namespace: Prefix of every key we write (``"cr"`` in production).
        tracker_prefix: Prefix of Rasa's tracker keys (``"tracker:"``, or
            ``"{key_prefix}:tracker:"`` when ``endpoints.yml`` sets one).
        lock_prefix: Prefix of Rasa's conversation locks.
    """

    namespace: str = "cr"
    tracker_prefix: str = "tracker:"
    lock_prefix: str = "lock:"

    @classmethod
    def from_endpoints(cls, path: Path, namespace: str) -> Layout:
        """The layout for ``namespace`` and the Rasa stores configured in ``endpoints.yml``.

        Raises:
            ConfigError: The file cannot be read, or a ``key_prefix`` is not alphanumeric.
        """
        endpoints = load_yaml(path)
        prefixes = []
        for store, default in (("tracker_store", "tracker:"), ("lock_store", "lock:")):
            given = (endpoints.get(store) or {}).get("key_prefix")
            if given and not str(given).isalnum():
                raise ConfigError(str(path), f"{store}.key_prefix", "must be alphanumeric")
            prefixes.append(f"{given}:{default}" if given else default)
        return cls(namespace, prefixes[0], prefixes[1])

    def key(self, *parts: str) -> str:
        """A key in the namespace."""
        return key(self.namespace, *parts)


@dataclass
class Resident:
    """What identifies one resident in Redis.

    Attributes:
        query: What the operator asked for.
        conversations: Conversation ids (Rasa sender ids) on every channel.
        cases: Handoff case ids.
        contacts: Handoff contact index entries (``id:...``, ``phone:...``, ``email:...``).
        phones: Phone numbers, as international digits.
        emails: Email addresses, lower case.
    """

    query: str
    conversations: list[str] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)
    contacts: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        """Whether anything is held about them."""
        return bool(self.conversations or self.cases)

    def identifiers(self) -> list[str]:
        """Strings that, found anywhere in Redis, point at this resident."""
        found = [*self.conversations, *self.cases, *self.emails]
        for digits in self.phones:
            found.append(digits)
            if digits.startswith("44"):
                found.append("0" + digits[2:])
        return list(dict.fromkeys(found))


def _add(items: list[str], *new: str) -> None:
    items.extend(item for item in new if item and item not in items)


async def _scan(client: redis.asyncio.Redis, match: str) -> list[str]:
    return [str(k) async for k in client.scan_iter(match=match, count=1000)]


async def _stream(client: redis.asyncio.Redis, stream: str) -> list[tuple[str, dict[str, str]]]:
    """Every entry of a stream, read in pages."""
    found: list[tuple[str, dict[str, str]]] = []
    start = "-"
    while True:
        page: Any = await client.xrange(stream, start, "+", count=_STREAM_PAGE)
        found += [(str(entry_id), dict(fields)) for entry_id, fields in page]
        if len(page) < _STREAM_PAGE:
            return found
        start = "(" + str(page[-1][0])


async def _conversations_of_phone(
    client: redis.asyncio.Redis, layout: Layout, digits: str
) -> list[str]:
    """Conversations on a phone channel whose sender is this number (handed off or not)."""
    candidates = [
        k[len(layout.tracker_prefix) :]
        for k in await _scan(client, f"{_glob(layout.tracker_prefix)}*{digits[-9:]}")
    ]
    async for member, _score in client.zscan_iter(
        layout.key("window", "last"), match=f"*{digits[-9:]}"
    ):
        candidates.append(str(member))
    found: list[str] = []
    for conversation in candidates:
        channel, _, rest = conversation.partition(":")
        sender = rest.rpartition(":")[2]
        if channel in _PHONE_CHANNELS and phone_digits(sender) == digits:
            _add(found, conversation)
    return found


async def _load_case(
    client: redis.asyncio.Redis, layout: Layout, case_id: str
) -> HandoffRecord | None:
    text = await client.get(layout.key("handoff", "case", case_id))
    return HandoffRecord.from_json(text) if text else None


async def find(client: redis.asyncio.Redis, layout: Layout, query: str) -> Resident:
    """Find a resident by conversation id, phone number, email address or handoff case id."""
    query = query.strip()
    resident = Resident(query)
    if "@" in query and ":" not in query:
        _add(resident.emails, query.lower())
        _add(resident.contacts, f"email:{query.lower()}")
    elif query.count(":") >= 2:
        _add(resident.conversations, query)
        channel, _, rest = query.partition(":")
        sender = rest.rpartition(":")[2]
        _add(resident.contacts, f"id:{channel}:{sender}")
        if channel in _PHONE_CHANNELS and (digits := phone_digits(sender)):
            _add(resident.phones, digits)
    elif (digits := phone_digits(query)) and not await client.exists(
        layout.key("handoff", "case", query)
    ):
        _add(resident.phones, digits)
        _add(resident.contacts, f"phone:{digits}")
        _add(resident.conversations, *await _conversations_of_phone(client, layout, digits))
    else:  # a handoff case id, or a sender id of Rasa's REST channel
        if await client.exists(layout.key("handoff", "case", query)):
            _add(resident.cases, query)
        if await client.exists(layout.tracker_prefix + query):
            _add(resident.conversations, query)
    for contact in list(resident.contacts):
        index = layout.key("handoff", "contact", contact)
        _add(resident.cases, *[str(c) for c in await client.zrange(index, 0, -1)])
    for case_id in list(resident.cases):
        record = await _load_case(client, layout, case_id)
        if record is None:
            continue
        _add(resident.conversations, record.conversation_id)
        _add(resident.contacts, *contact_keys(record))
    # a conversation found through a phone or an email may have cases of its own
    for conversation in resident.conversations:
        channel, _, rest = conversation.partition(":")
        if rest:
            index = layout.key("handoff", "contact", f"id:{channel}:{rest.rpartition(':')[2]}")
            _add(resident.cases, *[str(c) for c in await client.zrange(index, 0, -1)])
    return resident


def _message_ids(tracker: dict[str, Any] | None) -> list[str]:
    if not tracker:
        return []
    found: list[str] = []
    for event in tracker.get("events", []):
        if event.get("event") == "user":
            metadata = event.get("metadata") or {}
            _add(found, str(metadata.get("channel_message_id") or event.get("message_id") or ""))
    return found


def _references(*texts: str) -> list[str]:
    found: list[str] = []
    for text in texts:
        _add(found, *_MISSED_BIN_REFERENCE.findall(text))
    return found


@dataclass
class _Held:
    """Everything found about a resident, with the keys and entries it lives in."""

    export: dict[str, Any]
    keys: list[str] = field(default_factory=list)  # deleted whole
    stream_entries: dict[str, list[str]] = field(default_factory=dict)  # stream -> entry ids
    sorted_set_members: dict[str, list[str]] = field(default_factory=dict)

    def entry(self, stream: str, entry_id: str) -> None:
        _add(self.stream_entries.setdefault(stream, []), entry_id)

    def member(self, zset: str, member: str) -> None:
        _add(self.sorted_set_members.setdefault(zset, []), member)


async def _collect(client: redis.asyncio.Redis, layout: Layout, resident: Resident) -> _Held:
    cases = set(resident.cases)
    held = _Held(
        {
            "query": resident.query,
            "exported_at": datetime.now(UTC).isoformat(),
            "identifiers": {
                "conversations": resident.conversations,
                "handoff_cases": resident.cases,
                "phones": resident.phones,
                "emails": resident.emails,
            },
            "conversations": [],
            "handoff_cases": [],
            "missed_bin_reports": [],
        }
    )
    texts: list[str] = []
    streams = {
        name: await _stream(client, layout.key(*name.split(":")))
        for name in ("inbox", "inbox:dead", "outbox", "outbox:failed", "handoff:events")
    }
    window = layout.key("window", "last")
    for conversation in resident.conversations:
        tracker_key = layout.tracker_prefix + conversation
        raw = await client.get(tracker_key)
        tracker = json.loads(raw) if raw else None
        texts.append(raw or "")
        channel, _, rest = conversation.partition(":")
        account = rest.partition(":")[0]
        delivery_key = layout.key("delivery", conversation)
        seen_prefix = layout.key("stats", "seen", "")
        seen_days = await _scan(client, f"{_glob(seen_prefix)}*:{_glob(conversation)}")
        held.keys += [tracker_key, layout.lock_prefix + conversation, delivery_key, *seen_days]
        held.keys.append(layout.key("handoff", "conversation", conversation))
        message_ids = _message_ids(tracker)
        entries: dict[str, list[dict[str, str]]] = {}
        for name, rows in streams.items():
            if name == "handoff:events":
                continue
            for entry_id, fields in rows:
                if conversation in (fields.get("conversation"), fields.get("conversation_id")):
                    entries.setdefault(name, []).append({"id": entry_id, **fields})
                    held.entry(layout.key(*name.split(":")), entry_id)
                    texts.append(json.dumps(fields))
                    if name.startswith("inbox") and fields.get("message"):
                        message = json.loads(fields["message"])
                        _add(message_ids, str(message.get("message_id") or ""))
        seen_keys = [layout.key("inbox", "seen", channel, account, m) for m in message_ids]
        held.keys += seen_keys
        last_inbound = await client.zscore(window, conversation)
        if last_inbound is not None:
            held.member(window, conversation)
        held.export["conversations"].append(
            {
                "conversation_id": conversation,
                "tracker": tracker,
                "last_inbound_at": (
                    datetime.fromtimestamp(float(last_inbound), UTC).isoformat()
                    if last_inbound is not None
                    else None
                ),
                "inbox_message_ids_remembered": [
                    k.rpartition(":")[2] for k in seen_keys if await client.exists(k)
                ],
                "stream_entries": entries,
                "delivery_states": {
                    name: json.loads(value)
                    for name, value in (await client.hgetall(delivery_key)).items()
                },
                "days_active": sorted(k[len(seen_prefix) :].partition(":")[0] for k in seen_days),
            }
        )
    for case_id in resident.cases:
        record_key = layout.key("handoff", "case", case_id)
        raw = await client.get(record_key)
        record = HandoffRecord.from_json(raw) if raw else None
        messages_key = layout.key("handoff", "messages", case_id)
        notes_key = layout.key("handoff", "notes", case_id)
        meta_key = layout.key("handoff", "meta", case_id)
        messages = [json.loads(m) for m in await client.lrange(messages_key, 0, -1)]
        notes = [json.loads(n) for n in await client.lrange(notes_key, 0, -1)]
        texts += [raw or "", json.dumps(messages), json.dumps(notes)]
        held.export["handoff_cases"].append(
            {
                "case_id": case_id,
                "record": json.loads(raw) if raw else None,
                "messages": messages,
                "notes": notes,
                "timings": await client.hgetall(meta_key),
            }
        )
        alerts = layout.key("handoff", "alerts")
        held.keys += [
            record_key,
            messages_key,
            notes_key,
            meta_key,
            layout.key("handoff", "lease", case_id),
            f"{alerts}:case:{case_id}",
            f"{alerts}:lock:{case_id}",
        ]
        held.member(f"{alerts}:pending", case_id)
        held.member(layout.key("handoff", "open"), case_id)
        held.member(layout.key("handoff", "cases"), case_id)
        if record is not None:
            held.member(layout.key("handoff", "open", record.team), case_id)
            for contact in contact_keys(record):
                held.member(layout.key("handoff", "contact", contact), case_id)
        breaches = layout.key("handoff", "sla", "breaches")
        async for member, _score in client.zscan_iter(breaches, match=f"*{_glob(case_id)}*"):
            held.member(breaches, str(member))
    for contact in resident.contacts:
        held.keys.append(layout.key("handoff", "contact", contact))
    events = layout.key("handoff", "events")
    for entry_id, fields in streams["handoff:events"]:
        if fields.get("case_id") in cases:
            held.entry(events, entry_id)
    for reference in _references(*texts):
        report_key = layout.key("bins", "missed", reference)
        report = await client.hgetall(report_key)
        if report:
            held.export["missed_bin_reports"].append(report)
            held.keys.append(report_key)
            parts = (report.get("uprn", ""), report.get("bin_type", ""), report.get("due", ""))
            dedupe = layout.key("bins", "missed", "by", *parts)
            if await client.get(dedupe) == reference:
                held.keys.append(dedupe)
    return held


async def export(client: redis.asyncio.Redis, layout: Layout, resident: Resident) -> dict[str, Any]:
    """Everything held about ``resident``, as JSON-ready data."""
    return (await _collect(client, layout, resident)).export


@dataclass(frozen=True)
class Erasure:
    """What :func:`erase` did.

    Attributes:
        reference: The audit log's reference of this erasure (no contact detail).
        keys: Keys deleted.
        entries: Stream entries, set members and hash fields removed.
        conversations: Conversations erased.
        cases: Handoff cases erased.
        missed_bin_reports: Missed-bin reports erased.
    """

    reference: str
    keys: int
    entries: int
    conversations: int
    cases: int
    missed_bin_reports: int

    def summary(self) -> dict[str, int]:
        """The counts, as written to the audit log."""
        return {
            "conversations": self.conversations,
            "handoff_cases": self.cases,
            "missed_bin_reports": self.missed_bin_reports,
            "keys": self.keys,
            "entries": self.entries,
        }


async def erase(
    client: redis.asyncio.Redis,
    layout: Layout,
    resident: Resident,
    audit: AuditLog,
    *,
    actor: str = "cli",
    request: str = "",
) -> Erasure:
    """Remove everything held about ``resident`` and record the erasure in the audit log.

    Args:
        client: Asyncio Redis client (decoded strings).
        layout: Where the stores keep their keys.
        resident: From :func:`find`.
        audit: The audit log (:class:`bot.web.audit.AuditLog`); the entry ``resident.erase``
            names a random reference (or the operator's ``request`` reference) and the counts,
            never the resident's contact details.
        actor: Who asked for it.
        request: The council's own reference of the erasure request (a ticket number).
    """
    held = await _collect(client, layout, resident)
    removed_keys = 0
    removed_entries = 0
    keys = list(dict.fromkeys(held.keys))
    for start in range(0, len(keys), 500):
        removed_keys += int(await client.delete(*keys[start : start + 500]))
    pipe = client.pipeline(transaction=False)
    for stream, ids in held.stream_entries.items():
        pipe.xdel(stream, *ids)
    for zset, members in held.sorted_set_members.items():
        pipe.zrem(zset, *members)
    removed_entries = sum(int(n) for n in await pipe.execute())
    reference = request or f"erase-{uuid.uuid4().hex[:12]}"
    erasure = Erasure(
        reference,
        removed_keys,
        removed_entries,
        len(resident.conversations),
        len(resident.cases),
        len(held.export["missed_bin_reports"]),
    )
    await audit.record(actor, "resident.erase", "resident", reference, erasure.summary())
    return erasure


async def _values(client: redis.asyncio.Redis, name: str) -> Iterable[str]:
    kind = await client.type(name)
    if kind == "string":
        return [str(await client.get(name) or "")]
    if kind == "hash":
        return [f"{k}={v}" for k, v in (await client.hgetall(name)).items()]
    if kind == "list":
        return [str(v) for v in await client.lrange(name, 0, -1)]
    if kind == "set":
        return [str(v) for v in await client.smembers(name)]
    if kind == "zset":
        return [str(v) for v in await client.zrange(name, 0, -1)]
    if kind == "stream":
        return [json.dumps(fields) for _, fields in await _stream(client, name)]
    return []


async def leftovers(
    client: redis.asyncio.Redis, layout: Layout, resident: Resident, *, skip: Iterable[str] = ()
) -> list[str]:
    """Keys of the namespace, the tracker store or the lock store that still mention the resident.

    Every key is read, so this is for verifying an erasure, not for every request.

    Args:
        client: Asyncio Redis client (decoded strings).
        layout: Where the stores keep their keys.
        resident: From :func:`find` (before the erasure).
        skip: Keys not to read (the audit log, which keeps only a reference).
    """
    needles = resident.identifiers()
    skipped = set(skip)
    found = []
    for prefix in (f"{layout.namespace}:", layout.tracker_prefix, layout.lock_prefix):
        for name in await _scan(client, f"{_glob(prefix)}*"):
            if name in skipped:
                continue
            haystack = [name, *await _values(client, name)]
            if any(needle in text for needle in needles for text in haystack):
                found.append(name)
    return sorted(set(found))
