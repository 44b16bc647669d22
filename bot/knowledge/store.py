"""The knowledge base in Redis: entries, their full history, and what residents are served.

Versions, publishing, second-person approval and rollback are the shared
:class:`bot.versioning.VersionedStore` (keys under ``{ns}:kb:``: ``head``, ``versions:{id}``,
``seq:{id}``, ``live``, ``rev``, ``approval``, ``pending``). The knowledge base adds the
regression gate before every publish and selection: each process compares ``rev`` with the
value it last loaded (at most every ``refresh_seconds``) and then re-embeds only changed
entries, so a publish reaches every running server within seconds and without ``rasa train``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime

import redis.asyncio

from bot.errors import PublishBlockedError
from bot.knowledge.gate import Conversation, GateReport, run_gate
from bot.knowledge.model import Entry, Version, entry_problems
from bot.knowledge.selector import FloatArray, Index, Selection, SelectionPolicy, TextEncoder
from bot.versioning import VersionedStore

__all__ = ["KnowledgeBase"]


class KnowledgeBase(VersionedStore[Entry]):
    """Entries, versions and live answers of one deployment.

    Storing, publishing, approval and rollback are :class:`~bot.versioning.VersionedStore`'s
    (keys under ``{ns}:kb:``, the approval unit is the entry's ``owner_team``); the knowledge
    base adds selection and the regression gate every publish passes.

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
        super().__init__(
            redis,
            namespace,
            "kb",
            load=Entry.from_dict,
            problems=entry_problems,
            group=lambda entry: entry.owner_team,
            now=now,
        )
        self.conversations = list(conversations)
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._encoder = encoder
        self._policy = policy
        self._index: Index | None = None
        self._rev: str | None = None
        self._checked = float("-inf")
        self._lock = asyncio.Lock()

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

    async def due_for_review(self, today: date) -> list[Entry]:
        """Return entries (not archived) whose review date is before ``today``."""
        return [
            v.entry
            for v in await self.heads()
            if v.entry.status != "archived" and v.entry.review_by < today
        ]

    async def _gate(self, entry: Entry, override_by: str) -> None:
        """Refuse a publish that breaks test conversations, unless an admin overrides."""
        if self.conversations and not override_by:
            report = await self.regression(entry)
            if report.broken:
                raise PublishBlockedError(entry.id, list(report.broken))

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
            rev = await self.revision()
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
