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
  queue and contact indexes, events, safeguarding alerts, service-level breaches) and the
  reports' redacted copy of a case's unanswered question (``{ns}:stats:question:{case id}``,
  :mod:`bot.handoff.questions`: redacted, but still the resident's words);
* missed-bin reports whose reference the bot gave in the conversation;
* the web chat's events, state (a confirmed phone number), uploads and markers
  (:func:`bot.webchat.residents.held`), and the entries naming the conversation in the
  stream that wakes its readers (``{ns}:webchat:notify``);
* problem reports made in the conversation (record, queued and failed entries), its
  subscriptions to requests' updates and the markers of updates it was told
  (:func:`bot.reports.residents.held`), and the photos sent for them: the files (or bucket
  objects) and their index (:class:`bot.reports.photos.PhotoIndex`; erased with the
  resident, swept a day after arriving when their report was never sent, and after
  ``retention.problem_reports`` days otherwise);
* the review queue's candidates from the conversation (:mod:`bot.knowledge.review`: redacted
  messages waiting for, or decided by, an editor), with their indexes.

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
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis.asyncio

from bot.config import load_yaml
from bot.errors import ConfigError
from bot.handoff.questions import RETENTION_SECONDS as QUESTION_SECONDS
from bot.handoff.queue import contact_keys
from bot.handoff.record import HandoffRecord
from bot.keys import key, literal, prefix
from bot.knowledge.review import ReviewQueue
from bot.profile import Retention
from bot.profile import current as current_profile
from bot.reports.photos import PhotoIndex, PhotoStore, photo_store
from bot.reports.residents import Held as ReportsHeld
from bot.reports.residents import held as reports_held
from bot.reports.residents import stale as stale_reports
from bot.services import ROOT
from bot.webchat.residents import conversations_of_phone as webchat_of_phone
from bot.webchat.residents import held as webchat_held
from bot.webchat.residents import traced as webchat_traced
from bot.webchat.status import sender_of

if TYPE_CHECKING:
    from bot.web.audit import AuditLog

__all__ = [
    "Erasure",
    "Layout",
    "Resident",
    "Retention",
    "erase",
    "export",
    "find",
    "leftovers",
    "phone_digits",
    "sweep",
]

_PHONE_CHANNELS = frozenset({"whatsapp", "sms"})
_NOT_DIGIT = re.compile(r"\D")
_MISSED_BIN_REFERENCE = re.compile(r"\bMB-\d{4}-\d{6}\b")
_STREAM_PAGE = 1000


def phone_digits(text: str) -> str | None:
    """A phone number as international digits (UK ``07...`` becomes ``447...``), or None."""
    digits = _NOT_DIGIT.sub("", text)
    if digits.startswith("0"):
        digits = "44" + digits[1:]
    return digits if len(digits) >= 9 else None


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
        """Strings that, found anywhere in Redis, point at this resident.

        A conversation's sender id counts on its own too: the web chat's keys and streams
        name a conversation by its sender (the token's id), not by the whole conversation id.
        """
        found = [*self.conversations, *self.cases, *self.emails]
        found += [c.rpartition(":")[2] for c in self.conversations if c.count(":") >= 2]
        for digits in self.phones:
            found.append(digits)
            if digits.startswith("44"):
                found.append("0" + digits[2:])
        return list(dict.fromkeys(found))

    def named_in(self, text: str) -> bool:
        """Whether ``text`` holds what was asked for or one of :meth:`identifiers`.

        A request reference must not: the audit log keeps it.
        """
        needles = [self.query, *self.identifiers()]
        return any(n and n in text for n in needles) or phone_digits(text) in self.phones


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
        for k in await _scan(client, f"{literal(layout.tracker_prefix)}*{digits[-9:]}")
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
        _add(resident.conversations, *await webchat_of_phone(client, layout.namespace, digits))
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
    # a conversation found through a phone or an email may have cases of its own
    for conversation in resident.conversations:
        channel, _, rest = conversation.partition(":")
        if rest:
            index = layout.key("handoff", "contact", f"id:{channel}:{rest.rpartition(':')[2]}")
            _add(resident.cases, *[str(c) for c in await client.zrange(index, 0, -1)])
    resident.conversations = [
        c for c in resident.conversations if await _has_trace(client, layout, c)
    ]
    return resident


async def _has_trace(client: redis.asyncio.Redis, layout: Layout, conversation: str) -> bool:
    """Whether a conversation left anything in the places every conversation writes to."""
    keys = (
        layout.tracker_prefix + conversation,
        layout.key("delivery", conversation),
        layout.key("handoff", "conversation", conversation),
        layout.key("reports", "conversation", conversation),
        layout.key("reports", "following", conversation),
    )
    if await client.exists(*keys):
        return True
    if await webchat_traced(client, layout.namespace, conversation):
        return True
    return await client.zscore(layout.key("window", "last"), conversation) is not None


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


class _Collector:
    """Finds what is held (for the export) and where it lives (for the erasure)."""

    def __init__(self, client: redis.asyncio.Redis, layout: Layout) -> None:
        self.client = client
        self.layout = layout
        self.keys: list[str] = []  # deleted whole
        self.stream_entries: dict[str, list[str]] = {}  # stream -> entry ids
        self.sorted_set_members: dict[str, list[str]] = {}
        self.set_members: dict[str, list[str]] = {}
        self.hash_fields: dict[str, list[str]] = {}
        self.texts: list[str] = []  # where missed-bin references are looked for
        self._streams: dict[str, list[tuple[str, dict[str, str]]]] = {}

    def _entry(self, stream: str, entry_id: str) -> None:
        _add(self.stream_entries.setdefault(stream, []), entry_id)

    def _member(self, zset: str, member: str) -> None:
        _add(self.sorted_set_members.setdefault(zset, []), member)

    def absorb(self, found: ReportsHeld) -> None:
        """Remove what problem reports hold (:mod:`bot.reports.residents`) too."""
        self.keys += found.keys
        for target, source in (
            (self.stream_entries, found.stream_entries),
            (self.sorted_set_members, found.sorted_set_members),
            (self.set_members, found.set_members),
            (self.hash_fields, found.hash_fields),
        ):
            for name, values in source.items():
                _add(target.setdefault(name, []), *values)

    async def _entries(self, name: str) -> list[tuple[str, dict[str, str]]]:
        if name not in self._streams:
            self._streams[name] = await _stream(self.client, self.layout.key(*name.split(":")))
        return self._streams[name]

    async def conversation(self, conversation: str) -> dict[str, Any]:
        """A conversation: tracker, inbox, window, outbox, delivery states, report markers."""
        layout, client = self.layout, self.client
        tracker_key = layout.tracker_prefix + conversation
        raw = await client.get(tracker_key)
        tracker = json.loads(raw) if raw else None
        self.texts.append(raw or "")
        channel, _, rest = conversation.partition(":")
        account = rest.partition(":")[0]
        delivery_key = layout.key("delivery", conversation)
        seen_prefix = layout.key("stats", "seen", "")
        seen_days = await _scan(client, f"{literal(seen_prefix)}*:{literal(conversation)}")
        self.keys += [tracker_key, layout.lock_prefix + conversation, delivery_key, *seen_days]
        self.keys.append(layout.key("handoff", "conversation", conversation))
        message_ids = _message_ids(tracker)
        entries: dict[str, list[dict[str, str]]] = {}
        for name in ("inbox", "inbox:dead", "outbox", "outbox:failed"):
            for entry_id, fields in await self._entries(name):
                if conversation not in (fields.get("conversation"), fields.get("conversation_id")):
                    continue
                entries.setdefault(name, []).append({"id": entry_id, **fields})
                self._entry(layout.key(*name.split(":")), entry_id)
                self.texts.append(json.dumps(fields))
                if name.startswith("inbox") and fields.get("message"):
                    message = json.loads(fields["message"])
                    _add(message_ids, str(message.get("message_id") or ""))
        seen_keys = [layout.key("inbox", "seen", channel, account, m) for m in message_ids]
        self.keys += seen_keys
        window = layout.key("window", "last")
        last_inbound = await client.zscore(window, conversation)
        if last_inbound is not None:
            self._member(window, conversation)
        webchat = await webchat_held(client, layout.namespace, conversation)
        if webchat is not None:
            self.keys += webchat.keys
            # the wake-up stream of its readers (SSE) names the conversation in each entry
            for entry_id, fields in await self._entries("webchat:notify"):
                if fields.get("c") == sender_of(conversation):
                    self._entry(layout.key("webchat", "notify"), entry_id)
            self._member(webchat.index, webchat.member)
            if webchat.phone_index:
                members = self.set_members.setdefault(webchat.phone_index, [])
                _add(members, webchat.phone_member)
        reports = await reports_held(client, layout.namespace, conversation)
        self.absorb(reports)
        photos = await PhotoIndex(client, layout.namespace).of(conversation)
        return {
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
            "webchat": webchat.export if webchat is not None else None,
            "problem_reports": reports.export,
            # the photos themselves are files (or bucket objects): named, not embedded
            "problem_report_photos": photos,
        }

    async def case(self, case_id: str) -> dict[str, Any]:
        """A handoff case (:mod:`bot.handoff.queue`'s layout) and its events and alerts."""
        layout, client = self.layout, self.client
        record_key = layout.key("handoff", "case", case_id)
        raw = await client.get(record_key)
        record = HandoffRecord.from_json(raw) if raw else None
        messages_key = layout.key("handoff", "messages", case_id)
        notes_key = layout.key("handoff", "notes", case_id)
        meta_key = layout.key("handoff", "meta", case_id)
        messages = [json.loads(m) for m in await client.lrange(messages_key, 0, -1)]
        notes = [json.loads(n) for n in await client.lrange(notes_key, 0, -1)]
        self.texts += [raw or "", json.dumps(messages), json.dumps(notes)]
        alerts = layout.key("handoff", "alerts")
        self.keys += [
            record_key,
            messages_key,
            notes_key,
            meta_key,
            layout.key("handoff", "lease", case_id),
            f"{alerts}:case:{case_id}",
            f"{alerts}:lock:{case_id}",
        ]
        self._member(f"{alerts}:pending", case_id)
        self._member(layout.key("handoff", "open"), case_id)
        self._member(layout.key("handoff", "cases"), case_id)
        if record is not None:
            self._member(layout.key("handoff", "open", record.team), case_id)
            # only this case leaves the indexes: a number the resident gave may be someone else's
            for contact in contact_keys(record):
                self._member(layout.key("handoff", "contact", contact), case_id)
        breaches = layout.key("handoff", "sla", "breaches")
        async for member, _score in client.zscan_iter(breaches, match=f"*{literal(case_id)}*"):
            self._member(breaches, str(member))
        for entry_id, fields in await self._entries("handoff:events"):
            if fields.get("case_id") == case_id:
                self._entry(layout.key("handoff", "events"), entry_id)
        return {
            "case_id": case_id,
            "record": json.loads(raw) if raw else None,
            "messages": messages,
            "notes": notes,
            "timings": await client.hgetall(meta_key),
        }

    async def report_question(self, case_id: str) -> str | None:
        """The reports' redacted copy of a case's unanswered question (None: none kept).

        Not part of :meth:`case`: :func:`sweep` leaves it to its own expiry, as long as
        reports look back, while an erasure removes it with the case.
        """
        question_key = self.layout.key("stats", "question", case_id)
        question: str | None = await self.client.get(question_key)
        self.keys.append(question_key)
        self.texts.append(question or "")
        return question

    async def review_candidates(self, conversation: str) -> list[dict[str, Any]]:
        """The review queue's candidates from a conversation (:mod:`bot.knowledge.review`)."""
        queue = ReviewQueue(self.client, self.layout.namespace)
        candidates = await queue.of_conversation(conversation)
        self.keys.append(queue.conversation_key(conversation))
        for candidate in candidates:
            self.keys.append(queue.item_key(candidate.id))
            for index in queue.index_keys:
                self._member(index, candidate.id)
        return [asdict(c) for c in candidates]

    async def missed_bin_reports(self) -> list[dict[str, str]]:
        """Missed-bin reports whose reference appears in what was collected so far."""
        found = []
        for reference in _references(*self.texts):
            report_key = self.layout.key("bins", "missed", reference)
            report: dict[str, str] = await self.client.hgetall(report_key)
            if not report:
                continue
            found.append(report)
            self.keys.append(report_key)
            parts = (report.get("uprn", ""), report.get("bin_type", ""), report.get("due", ""))
            dedupe = self.layout.key("bins", "missed", "by", *parts)
            if await self.client.get(dedupe) == reference:
                self.keys.append(dedupe)
        return found

    async def remove(self) -> tuple[int, int]:
        """Delete what was collected; return (keys deleted, entries and members removed)."""
        removed_keys = 0
        keys = list(dict.fromkeys(self.keys))
        for start in range(0, len(keys), 500):
            removed_keys += int(await self.client.delete(*keys[start : start + 500]))
        pipe = self.client.pipeline(transaction=False)
        for stream, ids in self.stream_entries.items():
            pipe.xdel(stream, *ids)
        for zset, members in self.sorted_set_members.items():
            pipe.zrem(zset, *members)
        for name, members in self.set_members.items():
            pipe.srem(name, *members)
        for name, fields in self.hash_fields.items():
            pipe.hdel(name, *fields)
        return removed_keys, sum(int(n) for n in await pipe.execute())


async def _collect(
    client: redis.asyncio.Redis, layout: Layout, resident: Resident
) -> tuple[_Collector, dict[str, Any]]:
    collector = _Collector(client, layout)
    held = {
        "query": resident.query,
        "exported_at": datetime.now(UTC).isoformat(),
        "identifiers": {
            "conversations": resident.conversations,
            "handoff_cases": resident.cases,
            "phones": resident.phones,
            "emails": resident.emails,
        },
        "conversations": [await collector.conversation(c) for c in resident.conversations],
        "handoff_cases": [
            {**await collector.case(c), "report_question": await collector.report_question(c)}
            for c in resident.cases
        ],
    }
    held["missed_bin_reports"] = await collector.missed_bin_reports()
    held["review_candidates"] = [
        candidate
        for conversation in resident.conversations
        for candidate in await collector.review_candidates(conversation)
    ]
    return collector, held


async def export(client: redis.asyncio.Redis, layout: Layout, resident: Resident) -> dict[str, Any]:
    """Everything held about ``resident``, as JSON-ready data."""
    return (await _collect(client, layout, resident))[1]


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


def _photo_store() -> PhotoStore | None:
    """Where problem reports' photos are kept (None: the profile has no ``reports``)."""
    reports = current_profile().reports
    return photo_store(reports.photos, ROOT) if reports is not None else None


async def erase(
    client: redis.asyncio.Redis,
    layout: Layout,
    resident: Resident,
    audit: AuditLog,
    *,
    actor: str = "cli",
    request: str = "",
    ip: str = "",
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
        ip: The operator's address (a console request's client), for the audit entry.
    """
    collector, held = await _collect(client, layout, resident)
    store = _photo_store()
    if store is not None:  # the photo files first, while their index still names them
        for conversation in resident.conversations:
            await PhotoIndex(client, layout.namespace).erase(conversation, store)
    removed_keys, removed_entries = await collector.remove()
    reference = request or f"erase-{uuid.uuid4().hex[:12]}"
    erasure = Erasure(
        reference,
        removed_keys,
        removed_entries,
        len(resident.conversations),
        len(resident.cases),
        len(held["missed_bin_reports"]),
    )
    await audit.record(actor, "resident.erase", "resident", reference, erasure.summary(), ip=ip)
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
    for start in (prefix(layout.namespace), layout.tracker_prefix, layout.lock_prefix):
        for name in await _scan(client, f"{literal(start)}*"):
            if name in skipped:
                continue
            haystack = [name, *await _values(client, name)]
            if any(needle in text for needle in needles for text in haystack):
                found.append(name)
    return sorted(set(found))


def _last_event_at(raw: str | None) -> float | None:
    """When a stored tracker's last event happened (epoch seconds); None when unreadable."""
    try:
        events = json.loads(raw or "").get("events") or []
        return max(float(event["timestamp"]) for event in events)
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


async def _stale_conversations(
    client: redis.asyncio.Redis, layout: Layout, before: float
) -> list[str]:
    """Conversations whose last message is older than ``before`` (epoch seconds).

    A conversation's last message is its tracker's last event, or its last inbound message
    in the messaging window when later (or when the tracker has gone). A conversation still
    handed off to a person is left alone: its case has its own period.
    """
    last: dict[str, float] = {}
    async for member, score in client.zscan_iter(layout.key("window", "last")):
        last[str(member)] = float(score)
    for name in await _scan(client, f"{literal(layout.tracker_prefix)}*"):
        try:
            at = _last_event_at(await client.get(name))
        except redis.ResponseError:  # not a tracker (another key under the prefix)
            continue
        if at is None:
            continue
        conversation = name[len(layout.tracker_prefix) :]
        last[conversation] = max(last.get(conversation, 0.0), at)
    stale = []
    for conversation, at in last.items():
        handed_off = await client.exists(layout.key("handoff", "conversation", conversation))
        if at < before and not handed_off:
            stale.append(conversation)
    return stale


async def _stale_missed_bin_reports(
    client: redis.asyncio.Redis, layout: Layout, before: datetime
) -> list[str]:
    """Keys of missed-bin reports made before ``before``, with their de-duplication keys."""
    found = []
    for name in await _scan(client, f"{literal(layout.key('bins', 'missed', 'MB-'))}*"):
        fields = ("reference", "uprn", "bin_type", "due", "reported_at")
        reference, uprn, bin_type, due, reported_at = await client.hmget(name, fields)
        if not reported_at or datetime.fromisoformat(reported_at) >= before:
            continue
        found.append(name)
        dedupe = layout.key("bins", "missed", "by", uprn or "", bin_type or "", due or "")
        if reference and await client.get(dedupe) == reference:
            found.append(dedupe)
    return found


async def _stale_report_questions(
    client: redis.asyncio.Redis, layout: Layout, days: int
) -> list[str]:
    """Reports' copies of unanswered questions older than ``days``.

    They are written to expire after :data:`bot.handoff.questions.RETENTION_SECONDS`, so the
    time they have left tells their age.
    """
    found = []
    for name in await _scan(client, f"{literal(layout.key('stats', 'question', ''))}*"):
        left = int(await client.ttl(name))
        if left >= 0 and QUESTION_SECONDS - left > days * 86_400:
            found.append(name)
    return found


async def sweep(
    client: redis.asyncio.Redis, layout: Layout, retention: Retention, now: datetime
) -> dict[str, int]:
    """Remove what is older than its retention period; return how much of each kind.

    Closed handoff cases (from when they were closed), failed sends and inbox dead letters,
    conversations (from their last message: tracker, inbox, window, outbox, delivery states,
    report markers; their pending review-queue candidates, while decided ones stay as
    training data without the conversation id), missed-bin reports, audit log entries and the
    reports' copies of unanswered questions. Safe to run at any time and as often as wanted
    (:mod:`bot.residents.schedule` runs it daily). Reads every tracker, so it is not for
    every request.
    """

    def cutoff(days: int) -> datetime:
        return now - timedelta(days=days)

    closed_before = cutoff(retention.handoff_days)
    collector = _Collector(client, layout)
    cases = 0
    # a case is closed after it was opened, so only cases opened before the cut-off can qualify
    opened_before: list[str] = await client.zrangebyscore(
        layout.key("handoff", "cases"), "-inf", closed_before.timestamp() * 1000
    )
    for case_id in opened_before:
        closed_at = await client.hget(layout.key("handoff", "meta", case_id), "closed_at")
        if closed_at and datetime.fromisoformat(closed_at) < closed_before:
            await collector.case(case_id)
            cases += 1
    stale = await _stale_conversations(
        client, layout, cutoff(retention.conversation_days).timestamp()
    )
    review = ReviewQueue(client, layout.namespace)
    candidates = 0
    for conversation in stale:
        await collector.conversation(conversation)
        # pending review candidates go; decided ones stay as training data, unlinked
        candidates += await review.detach(conversation)
    reports = await _stale_missed_bin_reports(client, layout, cutoff(retention.missed_bin_days))
    questions = await _stale_report_questions(client, layout, retention.report_question_days)
    collector.keys += [*reports, *questions]
    problems = await stale_reports(
        client, layout.namespace, cutoff(retention.problem_report_days).timestamp()
    )
    collector.absorb(problems)
    await collector.remove()
    store = _photo_store()
    photos = (
        await PhotoIndex(client, layout.namespace).sweep(
            store, now.timestamp(), retention.problem_report_days
        )
        if store is not None
        else 0
    )

    def minid(days: int) -> int:
        return int(cutoff(days).timestamp() * 1000)

    failed = 0
    for stream in (
        layout.key("outbox", "failed"),
        layout.key("inbox", "dead"),
        layout.key("reports", "failed"),
    ):
        failed += int(
            await client.xtrim(stream, minid=minid(retention.failed_days), approximate=False)
        )
    audit = await client.xtrim(
        layout.key("audit"), minid=minid(retention.audit_days), approximate=False
    )
    return {
        "handoff_cases": cases,
        "failed_messages": failed,
        "conversations": len(stale),
        "missed_bin_reports": sum(":by:" not in name for name in reports),
        "audit_entries": int(audit),
        "report_questions": len(questions),
        "review_candidates": candidates,
        "problem_reports": problems.count(),
        "report_photos": photos,
    }
