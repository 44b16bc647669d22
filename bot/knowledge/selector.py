"""Choosing the entry that answers a message, without retraining anything.

A confident classified intent picks the topic; inside it the message is compared with the
entries' example questions by sentence-embedding similarity. When the intent is unsure, an
entry answers only when the message is both similar enough to it and closer to its topic than
to any other by the calibrated margin (:mod:`bot.knowledge.margin`): an answer from the wrong
topic is worse than a clarifying question. :meth:`Index.alternatives` gives the likeliest topics
for that question. The :class:`Index` keeps one embedding per example question and re-embeds
only entries whose questions changed, so a published edit is live as soon as a process
refreshes its index (and the margin is calibrated again).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
import numpy.typing as npt

from bot.knowledge.margin import DEFAULT_PRECISION, calibrate_margin
from bot.knowledge.model import Entry
from bot.nlu.calibration import Calibration

__all__ = ["Index", "Selection", "SelectionPolicy", "TextEncoder"]

FloatArray = npt.NDArray[np.float32]


class TextEncoder(Protocol):
    """Turns texts into normalised embedding rows (``bot.nlu.embedder.Embedder`` is one)."""

    def encode(self, texts: list[str]) -> FloatArray:
        """Return one normalised float32 row per text."""
        ...


@dataclass(frozen=True)
class Selection:
    """The entry chosen for a message.

    Attributes:
        entry: The entry.
        confidence: The intent's confidence (``method="intent"``) or the similarity of the
            message to the entry's closest example question (``method="similarity"``, and
            ``"clarify"`` for a topic offered by :meth:`Index.alternatives`).
        method: How it was chosen.
    """

    entry: Entry
    confidence: float
    method: str


@dataclass(frozen=True)
class SelectionPolicy:
    """Thresholds of the selection.

    Attributes:
        intent_threshold: An intent at least this confident picks the topic.
        similarity_threshold: Without a confident intent, an entry is chosen only when the
            message is at least this similar (cosine) to one of its example questions...
        answer_precision: ...and closer to its topic than to the next by the margin calibrated
            for this share of right answers (:mod:`bot.knowledge.margin`).
        fallback_margin: The margin used when there are too few examples to calibrate.
        clarify_threshold: A topic is offered in a clarifying question only when the message
            is at least this similar to one of its entries...
        clarify_spread: ...and at most this much less similar than the likeliest topic.
        max_options: At most this many topics are offered.
    """

    intent_threshold: float = 0.6
    similarity_threshold: float = 0.6
    answer_precision: float = DEFAULT_PRECISION
    fallback_margin: float = 0.35
    clarify_threshold: float = 0.5
    clarify_spread: float = 0.15
    max_options: int = 3


@dataclass(frozen=True)
class _Embedded:
    questions: tuple[str, ...]
    vectors: FloatArray


@dataclass(frozen=True)
class _Snapshot:
    """Everything a selection reads, swapped in one assignment so readers never see a mix."""

    entries: list[Entry]
    matrix: FloatArray
    offsets: npt.NDArray[np.intp]
    starts: npt.NDArray[np.float64]
    ends: npt.NDArray[np.float64]
    topics: dict[str, list[int]]
    topic_ids: npt.NDArray[np.intp]
    margin: Calibration


class Index:
    """The live entries and the embeddings of their example questions.

    Args:
        encoder: Embeds texts.
        policy: Selection thresholds.
    """

    def __init__(self, encoder: TextEncoder, policy: SelectionPolicy | None = None) -> None:
        self.encoder = encoder
        self.policy = policy or SelectionPolicy()
        self._embedded: dict[str, _Embedded] = {}
        self._snap = self._build([])

    @property
    def entries(self) -> list[Entry]:
        """The indexed entries, in index order."""
        return list(self._snap.entries)

    def update(self, entries: Iterable[Entry]) -> int:
        """Replace the indexed entries, embedding only questions not embedded before.

        Returns:
            How many entries had to be (re-)embedded.
        """
        entries = sorted(entries, key=lambda e: e.id)
        stale = [
            e
            for e in entries
            if e.id not in self._embedded or self._embedded[e.id].questions != e.questions
        ]
        texts = [q for e in stale for q in e.questions]
        vectors = self.encoder.encode(texts) if texts else np.zeros((0, 0), np.float32)
        # built aside and swapped in, so selections running meanwhile see old or new, never half
        keep = {e.id for e in entries}
        embedded = {k: v for k, v in self._embedded.items() if k in keep}
        start = 0
        for entry in stale:
            count = len(entry.questions)
            embedded[entry.id] = _Embedded(entry.questions, vectors[start : start + count])
            start += count
        self._embedded = embedded
        self._snap = self._build(entries)
        return len(stale)

    def with_entry(self, entry: Entry) -> Index:
        """Return a copy in which ``entry`` replaces (or joins) the entries; archived removes it.

        The copy shares the embeddings already computed, so only the edited entry is embedded.
        """
        copy = Index(self.encoder, self.policy)
        copy._embedded = dict(self._embedded)
        others = [e for e in self._snap.entries if e.id != entry.id]
        copy.update([*others, entry] if entry.status != "archived" else others)
        return copy

    def _build(self, entries: list[Entry]) -> _Snapshot:
        kept = [e for e in entries if e.questions]
        blocks = [self._embedded[e.id].vectors for e in kept]
        sizes = [len(e.questions) for e in kept]
        inf = float("inf")
        topics: dict[str, list[int]] = {}
        for position, entry in enumerate(kept):
            topics.setdefault(entry.topic, []).append(position)
        matrix = np.vstack(blocks).astype(np.float32) if blocks else np.zeros((0, 1), np.float32)
        names = list(topics)
        return _Snapshot(
            entries=kept,
            matrix=matrix,
            offsets=np.cumsum([0, *sizes[:-1]]).astype(np.intp),
            starts=np.array([e.publish_from.timestamp() if e.publish_from else -inf for e in kept]),
            ends=np.array([e.expire_at.timestamp() if e.expire_at else inf for e in kept]),
            topics=topics,
            topic_ids=np.array([names.index(e.topic) for e in kept], dtype=np.intp),
            margin=calibrate_margin(
                matrix,
                [e.topic for e in kept for _ in e.questions],
                floor=self.policy.similarity_threshold,
                target_precision=self.policy.answer_precision,
                fallback=self.policy.fallback_margin,
            ),
        )

    @property
    def margin(self) -> Calibration:
        """The calibrated margin of the live entries (recalculated on every update)."""
        return self._snap.margin

    def encode_message(self, text: str | None) -> FloatArray | None:
        """Return the message's embedding, or None for a message without words."""
        if not text or not text.strip():
            return None
        vector: FloatArray = self.encoder.encode([text])[0]
        return vector

    def similarities(self, vectors: FloatArray) -> FloatArray:
        """Return each entry's similarity (that of its closest example question).

        Args:
            vectors: One message embedding, or a matrix with one message per row.

        Returns:
            One score per entry, or one row of scores per message.
        """
        return self._similarities(self._snap, vectors)

    @staticmethod
    def _similarities(snap: _Snapshot, vectors: FloatArray) -> FloatArray:
        rows = np.atleast_2d(vectors)
        if not snap.entries:
            empty: FloatArray = np.zeros((rows.shape[0], 0), np.float32)
            return empty if vectors.ndim == 2 else empty[0]
        best: FloatArray = np.maximum.reduceat(rows @ snap.matrix.T, snap.offsets, axis=1)
        return best if vectors.ndim == 2 else best[0]

    def select(
        self,
        intent: str | None,
        confidence: float,
        vector: FloatArray | None,
        now: datetime,
    ) -> Selection | None:
        """Choose the entry for a message already embedded (see :meth:`encode_message`).

        Args:
            intent: The classified intent, if any.
            confidence: The intent's confidence.
            vector: The message's embedding (None: no words, the topic alone decides).
            now: The time the answer is for; entries outside their window are skipped.
        """
        snap = self._snap
        if not snap.entries:
            return None
        sims = self._similarities(snap, vector) if vector is not None else None
        return self._choose(snap, intent, confidence, sims, now)

    def select_many(
        self,
        asks: list[tuple[str | None, float]],
        vectors: FloatArray,
        now: datetime,
        chunk: int = 256,
    ) -> list[Selection | None]:
        """Like :meth:`select` for many messages at once (one matrix product per chunk).

        Args:
            asks: ``(intent, confidence)`` per message.
            vectors: One embedding row per message.
            now: The time the answers are for.
            chunk: Messages scored per matrix product (bounds memory).
        """
        snap = self._snap
        if not snap.entries:
            return [None] * len(asks)
        chosen: list[Selection | None] = []
        for start in range(0, len(asks), chunk):
            block = self._similarities(snap, vectors[start : start + chunk])
            for (intent, confidence), sims in zip(asks[start : start + chunk], block, strict=True):
                chosen.append(self._choose(snap, intent, confidence, sims, now))
        return chosen

    def _choose(
        self,
        snap: _Snapshot,
        intent: str | None,
        confidence: float,
        sims: FloatArray | None,
        now: datetime,
    ) -> Selection | None:
        moment = now.timestamp()
        live = (snap.starts <= moment) & (moment < snap.ends)
        if intent and confidence >= self.policy.intent_threshold:
            in_topic = [p for p in snap.topics.get(intent, []) if live[p]]
            if in_topic:
                best = in_topic[int(np.argmax(sims[in_topic]))] if sims is not None else in_topic[0]
                return Selection(snap.entries[best], float(confidence), "intent")
        if sims is None:
            return None
        masked = np.where(live, sims, -np.inf)
        best = int(np.argmax(masked))
        if masked[best] < self.policy.similarity_threshold:
            return None
        others = masked[snap.topic_ids != snap.topic_ids[best]]
        runner_up = float(others.max()) if others.size and np.isfinite(others.max()) else 0.0
        if masked[best] - runner_up < snap.margin.threshold:
            return None
        return Selection(snap.entries[best], float(masked[best]), "similarity")

    def alternatives(self, vector: FloatArray | None, now: datetime) -> list[Selection]:
        """The likeliest topics for a clarifying question: the closest live entry of each.

        At most ``max_options``, most similar first, each at least ``clarify_threshold``
        similar and within ``clarify_spread`` of the first (``method="clarify"``).
        """
        snap = self._snap
        if vector is None or not snap.entries:
            return []
        moment = now.timestamp()
        live = (snap.starts <= moment) & (moment < snap.ends)
        sims = np.where(live, self._similarities(snap, vector), -np.inf)
        options: list[Selection] = []
        seen: set[str] = set()
        for position in np.argsort(-sims, kind="stable"):
            entry, similarity = snap.entries[position], float(sims[position])
            if similarity < self.policy.clarify_threshold:
                break
            if options and similarity < options[0].confidence - self.policy.clarify_spread:
                break
            if entry.topic in seen:
                continue
            seen.add(entry.topic)
            options.append(Selection(entry, similarity, "clarify"))
            if len(options) == self.policy.max_options:
                break
        return options
