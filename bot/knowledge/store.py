"""The knowledge base in Redis: entries, their full history, and what residents are served.

Keys (under ``{ns}:kb:``):

- ``head`` hash: entry id -> the latest version (the editors' working copy, maybe a draft);
- ``versions:{id}`` list and ``seq:{id}`` counter: every version of an entry;
- ``live`` hash: entry id -> the published entry residents are served;
- ``rev`` counter: bumped on every change to ``live``. Each process compares it with the value
  it last loaded (at most every ``refresh_seconds``) and then re-embeds only changed entries,
  so a publish reaches every running server within seconds and without ``rasa train``;
- ``approval`` set: teams whose publishes need a second person; ``pending`` hash: entry id ->
  who asked for approval of which version. Any new version of the entry ends the request, and
  :meth:`KnowledgeBase.approve` publishes exactly the requested version, by someone who
  neither wrote nor requested it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime

import redis
import redis.asyncio

from bot.errors import EntryInvalidError, EntryNotFoundError, PublishBlockedError
from bot.keys import key
from bot.knowledge.gate import Conversation, GateReport, run_gate
from bot.knowledge.model import Entry, Version, changed_fields, entry_problems
from bot.knowledge.selector import FloatArray, Index, Selection, SelectionPolicy, TextEncoder

__all__ = ["KnowledgeBase"]


class KnowledgeBase:
    """Entries, versions and live answers of one deployment.

    Args:
        redis: Asyncio client with ``decode_responses=True``.
        namespace: Key namespace (``"cr"`` in production).
        encoder: Embeds texts for selection (default: the NLU model from ``config.yml``,
            loaded on first use, with a :class:`~bot.knowledge.embedding.CachingEncoder`);
            only selection and the regression gate need it.
        policy: Selection thresholds.
        conversations: Test conversations the regression gate runs before a publish.
        refresh_seconds: How often :meth:`select` checks Redis for published changes.
        clock: Monotonic seconds, for the refresh interval.
        now: Wall-clock time for version records.
    """

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        namespace: str = "cr",
        *,
        encoder: TextEncoder | None = None,
        policy: SelectionPolicy | None = None,
        conversations: Sequence[Conversation] = (),
        refresh_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.redis = redis
        self.namespace = namespace
        self.conversations = list(conversations)
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._now = now
        self._encoder = encoder
        self._policy = policy
        self._index: Index | None = None
        self._rev: str | None = None
        self._checked = float("-inf")
        self._lock = asyncio.Lock()

    def _key(self, *parts: str) -> str:
        return key(self.namespace, "kb", *parts)

    # reading

    async def get(self, entry_id: str) -> Entry:
        """Return the working copy (latest version) of an entry.

        Raises:
            EntryNotFoundError: No such entry.
        """
        return (await self.head(entry_id)).entry

    async def head(self, entry_id: str) -> Version:
        """Return the latest version of an entry.

        Raises:
            EntryNotFoundError: No such entry.
        """
        raw = await self.redis.hget(self._key("head"), entry_id)
        if raw is None:
            raise EntryNotFoundError(entry_id)
        return Version.from_dict(json.loads(raw))

    async def live(self, entry_id: str) -> Entry | None:
        """Return the published entry residents are served, if any."""
        raw = await self.redis.hget(self._key("live"), entry_id)
        return Entry.from_dict(json.loads(raw)) if raw else None

    async def all_live(self) -> list[Entry]:
        """Return every published entry (whatever its publication window)."""
        raw = await self.redis.hgetall(self._key("live"))
        return sorted((Entry.from_dict(json.loads(v)) for v in raw.values()), key=lambda e: e.id)

    async def heads(self) -> list[Version]:
        """Return the latest version of every entry, sorted by id."""
        raw = await self.redis.hgetall(self._key("head"))
        versions = (Version.from_dict(json.loads(v)) for v in raw.values())
        return sorted(versions, key=lambda v: v.entry.id)

    async def search(self, query: str = "", status: str = "") -> list[Version]:
        """Return heads whose id, title, topic, questions or answers contain ``query``."""
        needle = query.strip().lower()
        found = []
        for version in await self.heads():
            entry = version.entry
            if status and entry.status != status:
                continue
            haystack = " ".join(
                [entry.id, entry.title, entry.topic, *entry.questions, *entry.answers.values()]
            ).lower()
            if needle in haystack:
                found.append(version)
        return found

    async def versions(self, entry_id: str) -> list[Version]:
        """Return every version of an entry, oldest first.

        Raises:
            EntryNotFoundError: No such entry.
        """
        raw = await self.redis.lrange(self._key("versions", entry_id), 0, -1)
        if not raw:
            raise EntryNotFoundError(entry_id)
        return sorted((Version.from_dict(json.loads(v)) for v in raw), key=lambda v: v.number)

    async def version(self, entry_id: str, number: int) -> Version:
        """Return one version of an entry.

        Raises:
            EntryNotFoundError: No such entry or version.
        """
        for version in await self.versions(entry_id):
            if version.number == number:
                return version
        raise EntryNotFoundError(entry_id, number)

    async def due_for_review(self, today: date) -> list[Entry]:
        """Return entries (not archived) whose review date is before ``today``."""
        return [
            v.entry
            for v in await self.heads()
            if v.entry.status != "archived" and v.entry.review_by < today
        ]

    # writing

    async def _append(
        self,
        entry: Entry,
        author: str,
        reason: str,
        action: str,
        *,
        live: bool | None = None,
        override_by: str = "",
        approved_by: str = "",
        requested_by: str = "",
        expect: int | None = None,
    ) -> Version:
        """Store a new version; ``live`` True publishes it, False withdraws the live copy.

        Every new version ends a pending approval request (the request was for the content
        of an earlier version), unless it asks for approval itself (``requested_by``). With
        ``expect``, the version is stored only while the latest version is still number
        ``expect`` (raises :class:`PublishBlockedError` otherwise).
        """
        seq = self._key("seq", entry.id)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(seq)  # a concurrent save makes the transaction retry
                    latest = int(await pipe.get(seq) or 0)
                    if expect is not None and latest != expect:
                        raise PublishBlockedError(
                            entry.id,
                            [
                                f"version {expect} was changed (now version {latest}) after "
                                "approval was asked for; ask for approval again"
                            ],
                        )
                    previous = await pipe.hget(self._key("head"), entry.id)
                    before = Version.from_dict(json.loads(previous)).entry if previous else None
                    version = Version(
                        number=latest + 1,
                        entry=entry,
                        author=author,
                        at=self._now(),
                        reason=reason,
                        action=action,
                        changes=changed_fields(before, entry),
                        override_by=override_by,
                        approved_by=approved_by,
                        requested_by=requested_by,
                    )
                    payload = json.dumps(version.to_dict())
                    pipe.multi()
                    pipe.set(seq, version.number)
                    pipe.rpush(self._key("versions", entry.id), payload)
                    pipe.hset(self._key("head"), entry.id, payload)
                    if live is True:
                        pipe.hset(self._key("live"), entry.id, json.dumps(entry.to_dict()))
                    elif live is False:
                        pipe.hdel(self._key("live"), entry.id)
                    if live is not None:
                        pipe.incr(self._key("rev"))
                    if requested_by:
                        request = {"requested_by": requested_by, "version": version.number}
                        pipe.hset(self._key("pending"), entry.id, json.dumps(request))
                    else:
                        pipe.hdel(self._key("pending"), entry.id)
                    await pipe.execute()
                    return version
                except redis.WatchError:
                    continue

    async def save_draft(self, entry: Entry, author: str, reason: str) -> Version:
        """Save an edit as a draft; residents keep the published copy until it is published.

        A save ends any pending approval request: the approver must see what goes live.

        Raises:
            EntryInvalidError: The entry has problems (nothing is stored).
        """
        draft = entry.with_status("draft")
        problems = entry_problems(draft)
        if problems:
            raise EntryInvalidError(entry.id, problems)
        return await self._append(draft, author, reason, "save")

    async def _gate(self, entry: Entry, override_by: str) -> None:
        if self.conversations and not override_by:
            report = await self.regression(entry)
            if report.broken:
                raise PublishBlockedError(entry.id, list(report.broken))

    async def publish(
        self, entry_id: str, author: str, reason: str, *, override_by: str = ""
    ) -> Version:
        """Publish the working copy of an entry: residents get it within seconds.

        Teams that need a second person publish only through :meth:`approve`.

        Args:
            entry_id: The entry.
            author: Who publishes.
            reason: Why.
            override_by: An admin who accepts that test conversations break (the caller
                checks the role; the version records the name).

        Raises:
            EntryNotFoundError: No such entry.
            EntryInvalidError: The working copy has problems.
            PublishBlockedError: The team needs approval, or the entry breaks test
                conversations and no admin overrode the gate.
        """
        entry = (await self.get(entry_id)).with_status("published")
        problems = entry_problems(entry)
        if problems:
            raise EntryInvalidError(entry_id, problems)
        if await self.approval_required(entry.owner_team):
            raise PublishBlockedError(
                entry_id,
                [f"team {entry.owner_team} needs a second person: ask for approval instead"],
            )
        await self._gate(entry, override_by)
        return await self._append(
            entry, author, reason, "publish", live=True, override_by=override_by
        )

    async def approve(
        self, entry_id: str, number: int, approver: str, reason: str, *, override_by: str = ""
    ) -> Version:
        """Publish version ``number`` as a second person; it must be the version requested.

        The new version names the author of the approved content as its author and
        ``approver`` as ``approved_by``.

        Raises:
            EntryNotFoundError: No such entry or version.
            EntryInvalidError: The version has problems.
            PublishBlockedError: Nobody asked for approval of version ``number``, it was
                edited since, the approver wrote or requested it, or it breaks test
                conversations and no admin overrode the gate.
        """
        pending = await self.pending_approval(entry_id)
        if pending is None or pending[1] != number:
            raise PublishBlockedError(
                entry_id, [f"nobody is waiting for approval of version {number}"]
            )
        requested = await self.version(entry_id, number)
        if approver in {requested.author, pending[0]}:
            raise PublishBlockedError(
                entry_id, ["a second person must approve: you wrote or asked for this version"]
            )
        entry = requested.entry.with_status("published")
        problems = entry_problems(entry)
        if problems:
            raise EntryInvalidError(entry_id, problems)
        await self._gate(entry, override_by)
        note = f"{reason} (approved by {approver})" if reason else f"approved by {approver}"
        return await self._append(
            entry,
            requested.author,
            note,
            "approve",
            live=True,
            override_by=override_by,
            approved_by=approver,
            expect=number,
        )

    async def archive(self, entry_id: str, author: str, reason: str) -> Version:
        """Withdraw an entry: residents stop getting it within seconds.

        Raises:
            EntryNotFoundError: No such entry.
        """
        entry = (await self.get(entry_id)).with_status("archived")
        return await self._append(entry, author, reason, "archive", live=False)

    async def rollback(
        self, entry_id: str, number: int, author: str, reason: str, *, override_by: str = ""
    ) -> Version:
        """Restore the content of version ``number`` as a new version.

        A version that was published is published again (through the regression gate); on a
        team that needs a second person, it becomes the working copy waiting for approval
        instead. A draft or archived one becomes the working copy / withdraws the entry.

        Raises:
            EntryNotFoundError: No such entry or version.
            PublishBlockedError: Republishing would break test conversations.
        """
        old = (await self.version(entry_id, number)).entry
        why = f"{reason} (rollback to version {number})"
        if old.status == "published":
            if await self.approval_required(old.owner_team):
                return await self._append(
                    old.with_status("draft"), author, why, "rollback", requested_by=author
                )
            await self._gate(old, override_by)
            return await self._append(
                old, author, why, "rollback", live=True, override_by=override_by
            )
        return await self._append(
            old, author, why, "rollback", live=False if old.status == "archived" else None
        )

    async def import_entry(self, entry: Entry, author: str, reason: str) -> Version | None:
        """Load an entry from the content files; nothing is stored when it is unchanged.

        Raises:
            EntryInvalidError: The entry has problems.
        """
        problems = entry_problems(entry)
        if problems:
            raise EntryInvalidError(entry.id, problems)
        try:
            if await self.get(entry.id) == entry:
                return None
        except EntryNotFoundError:
            pass
        live = {"published": True, "archived": False}.get(entry.status)
        return await self._append(entry, author, reason, "import", live=live)

    # second-person approval

    async def set_approval_required(self, team: str, required: bool) -> None:
        """Require (or stop requiring) a second person to approve the team's publishes."""
        if required:
            await self.redis.sadd(self._key("approval"), team)
        else:
            await self.redis.srem(self._key("approval"), team)

    async def approval_required(self, team: str) -> bool:
        """Return whether the team's publishes need a second person."""
        return bool(await self.redis.sismember(self._key("approval"), team))

    async def request_approval(self, entry_id: str, author: str) -> Version:
        """Mark the working copy as waiting for a second person's approval.

        Raises:
            EntryNotFoundError: No such entry.
            EntryInvalidError: The working copy has problems.
            PublishBlockedError: The entry changed while asking.
        """
        head = await self.head(entry_id)
        problems = entry_problems(head.entry)
        if problems:
            raise EntryInvalidError(entry_id, problems)
        request = {"requested_by": author, "version": head.number}
        # only while that version is still the latest: a save in between would be approved
        # unseen otherwise
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(self._key("seq", entry_id))
            if int(await pipe.get(self._key("seq", entry_id)) or 0) != head.number:
                raise PublishBlockedError(entry_id, ["the entry changed: reload and ask again"])
            pipe.multi()
            pipe.hset(self._key("pending"), entry_id, json.dumps(request))
            try:
                await pipe.execute()
            except redis.WatchError:
                raise PublishBlockedError(
                    entry_id, ["the entry changed: reload and ask again"]
                ) from None
        return head

    async def pending_approval(self, entry_id: str) -> tuple[str, int] | None:
        """Return (who asked, which version) when the entry waits for approval."""
        raw = await self.redis.hget(self._key("pending"), entry_id)
        if raw is None:
            return None
        data = json.loads(raw)
        return str(data["requested_by"]), int(data["version"])

    # selection

    def _index_or_new(self) -> Index:
        if self._index is None:
            if self._encoder is None:
                from bot.knowledge.embedding import CachingEncoder, default_encoder

                self._encoder = CachingEncoder(default_encoder())
            self._index = Index(self._encoder, self._policy)
        return self._index

    async def refresh(self, force: bool = False) -> Index:
        """Bring the in-process index up to date with Redis (at most every refresh_seconds)."""
        index = self._index_or_new()
        if not force and self._clock() - self._checked < self.refresh_seconds:
            return index
        async with self._lock:
            self._checked = self._clock()
            rev = await self.redis.get(self._key("rev"))
            if rev != self._rev or force:
                entries = await self.all_live()
                # embedding is CPU work: keep the event loop answering meanwhile
                await asyncio.to_thread(index.update, entries)
                self._rev = rev
        return index

    async def select(
        self,
        intent: str | None,
        confidence: float,
        text: str | None,
        channel: str | None,
        now: datetime,
        vector: FloatArray | None = None,
    ) -> tuple[Entry, float] | None:
        """Return the live entry that answers a message and the confidence, or None.

        Args:
            intent: The classified intent.
            confidence: Its confidence.
            text: The resident's message.
            channel: The input channel (the caller picks the entry's variant with it).
            now: When the answer is served; expired or not-yet-published entries are skipped.
            vector: The message's embedding when the NLU already computed it (with the
                encoder's model); None encodes ``text`` here.
        """
        selection = await self.choose(intent, confidence, text, now, vector)
        return (selection.entry, selection.confidence) if selection else None

    async def choose(
        self,
        intent: str | None,
        confidence: float,
        text: str | None,
        now: datetime,
        vector: FloatArray | None = None,
    ) -> Selection | None:
        """Like :meth:`select`, but also says how the entry was chosen."""
        index = await self.refresh()
        if vector is None or not text or not text.strip():
            vector = await asyncio.to_thread(index.encode_message, text)
        return index.select(intent, confidence, vector, now)

    async def regression(self, edited: Entry, now: datetime | None = None) -> GateReport:
        """Run the test conversations and all example questions against an edited base.

        ``edited`` is evaluated as if published (or removed, when archived).
        """
        index = await self.refresh(force=True)
        if edited.status != "archived":
            edited = replace(edited, status="published")
        after = index.with_entry(edited)
        return await asyncio.to_thread(
            run_gate, index, after, self.conversations, now or self._now()
        )
