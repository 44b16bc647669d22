"""Residents' messages waiting for an editor to say what they should have been.

The council's own traffic shows what the assistant misses. Three sources feed one queue:

- ``clarification``: the bot was unsure and asked "Did you mean...?"; the resident picked a
  topic (:meth:`ReviewQueue.record_choice`), so the message is probably an example of it;
- ``unanswered``: the message that opened a ``low_confidence`` or ``out_of_scope`` handoff
  (the reports' "top unanswered questions", :mod:`bot.handoff.questions`), with the case's
  outcome (returned to the bot, resolved by a person, the team that had it) as the agents'
  verdict (:meth:`ReviewQueue.import_cases`).

An editor marks each (``bot.web.review``) as an example of an intent, as out of scope, as a new
example question of a knowledge-base entry, or rejects it. Approved intent and out-of-scope
examples are exported to ``data/nlu/reviewed.yml`` by ``python -m bot.train`` before training
(:meth:`ReviewQueue.training_examples`).

Texts are redacted (:func:`bot.redaction.redact`) before they are stored, and each candidate
names its conversation, so a resident's export and erasure (:mod:`bot.residents.rights`) find
them. Keys (under ``{ns}:review:``): ``item:{id}`` (JSON), ``pending`` and ``decided`` (sorted
sets of ids by time), ``conversation:{conversation id}`` (set of ids).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import redis.asyncio
import yaml

from bot.errors import CouncilError
from bot.handoff.questions import UNANSWERED_REASONS, UnansweredQuestions
from bot.handoff.queue import HandoffQueue
from bot.keys import key
from bot.redaction import redact

__all__ = ["LABELS", "Candidate", "CandidateNotFoundError", "ReviewQueue", "training_yaml"]

LABELS = ("intent", "out_of_scope", "kb_question", "rejected")
"""What an editor can say a message is (``rejected``: not useful)."""

OUT_OF_SCOPE = "out_of_scope"


class CandidateNotFoundError(CouncilError):
    """No candidate with this id (or it was decided already)."""

    def __init__(self, candidate_id: str) -> None:
        super().__init__(f"review candidate {candidate_id} not found or already decided")
        self.candidate_id = candidate_id


@dataclass(frozen=True)
class Candidate:
    """One message in the review queue.

    Attributes:
        id: ``case-{case id}`` for unanswered cases, a random id for clarifications.
        text: The resident's message, redacted.
        source: ``clarification`` or ``unanswered``.
        suggestion: The topic the resident chose or the case's topic (an intent name).
        entry_id: The entry the resident chose (clarifications).
        outcome: What happened to the case (``resolved by a person, team ...``).
        conversation_id: Whose message it was (for residents' export and erasure).
        created_at: When it was recorded (ISO, UTC).
        label: The editor's decision (:data:`LABELS`), empty while pending.
        intent: The intent it is an example of (``label="intent"``).
        decided_by: The editor.
        decided_at: When (ISO).
    """

    id: str
    text: str
    source: str
    suggestion: str = ""
    entry_id: str = ""
    outcome: str = ""
    conversation_id: str = ""
    created_at: str = ""
    label: str = ""
    intent: str = ""
    decided_by: str = ""
    decided_at: str = ""

    def to_json(self) -> str:
        """The candidate as stored."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str) -> Candidate:
        """Read a stored candidate."""
        return cls(**json.loads(raw))


class ReviewQueue:
    """The review queue of one deployment (see the module docstring).

    Args:
        redis: Asyncio client with ``decode_responses=True``.
        namespace: Key namespace.
        now: Wall-clock time.
    """

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        namespace: str = "cr",
        *,
        now: Any = lambda: datetime.now(UTC),
    ) -> None:
        self.redis = redis
        self.namespace = namespace
        self._now = now

    def _key(self, *parts: str) -> str:
        return key(self.namespace, "review", *parts)

    def item_key(self, candidate_id: str) -> str:
        """Where a candidate is stored."""
        return self._key("item", candidate_id)

    def conversation_key(self, conversation_id: str) -> str:
        """The set of a conversation's candidates."""
        return self._key("conversation", conversation_id)

    @property
    def index_keys(self) -> tuple[str, str]:
        """The sorted sets listing pending and decided candidates."""
        return self._key("pending"), self._key("decided")

    async def add(self, candidate: Candidate) -> Candidate | None:
        """Store a new candidate, its text redacted; return it as stored (None: known or empty)."""
        now = self._now()
        stored = replace(
            candidate,
            text=redact(candidate.text),
            created_at=candidate.created_at or now.isoformat(),
        )
        if not stored.text.strip():
            return None
        if not await self.redis.set(self.item_key(stored.id), stored.to_json(), nx=True):
            return None
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.index_keys[0], {stored.id: now.timestamp()})
            if stored.conversation_id:
                pipe.sadd(self.conversation_key(stored.conversation_id), stored.id)
            await pipe.execute()
        return stored

    async def record_choice(
        self, conversation_id: str, text: str, topic: str, entry_id: str
    ) -> Candidate | None:
        """Keep the message a resident clarified by choosing a topic (None: nothing to keep)."""
        candidate = Candidate(
            id=uuid.uuid4().hex,
            text=text,
            source="clarification",
            suggestion=topic,
            entry_id=entry_id,
            conversation_id=conversation_id,
        )
        return await self.add(candidate)

    async def import_cases(self, queue: HandoffQueue, start: datetime, end: datetime) -> int:
        """Add the unanswered questions of cases opened in ``[start, end)``; return how many.

        Cases already in the queue (pending or decided) are skipped. The outcome is the case's
        state when imported.
        """
        ids = await queue.case_ids_between(start, end)
        added = 0
        questions = UnansweredQuestions(queue.redis, queue.namespace)
        for offset in range(0, len(ids), 200):
            records = [
                r
                for r in await queue.get_many(ids[offset : offset + 200])
                if r.reason in UNANSWERED_REASONS
            ]
            fresh = [
                r
                for r in records
                if not await self.redis.exists(self.item_key(f"case-{r.case_id}"))
            ]
            # one by one: a case without words has no question, and add() skips it
            texts = [(await questions.questions([r]) or [""])[0] for r in fresh]
            for record, text in zip(fresh, texts, strict=True):
                outcome = {
                    "returned_to_bot": "given back to the bot",
                    "resolved": "resolved by a person",
                }.get(record.status, record.status)
                stored = await self.add(
                    Candidate(
                        id=f"case-{record.case_id}",
                        text=text,
                        source="unanswered",
                        suggestion=record.topic,
                        outcome=f"{outcome} ({record.team})",
                        conversation_id=record.conversation_id,
                        created_at=record.created_at,
                    )
                )
                added += stored is not None
        return added

    async def get(self, candidate_id: str) -> Candidate | None:
        """A candidate, pending or decided."""
        raw = await self.redis.get(self.item_key(candidate_id))
        return Candidate.from_json(raw) if raw else None

    async def _list(self, index: str, limit: int) -> list[Candidate]:
        ids = await self.redis.zrevrange(index, 0, limit - 1)
        if not ids:
            return []
        raws = await self.redis.mget([self.item_key(i) for i in ids])
        return [Candidate.from_json(raw) for raw in raws if raw]

    async def pending(self, limit: int = 100) -> list[Candidate]:
        """Candidates waiting for an editor, newest first."""
        return await self._list(self.index_keys[0], limit)

    async def decided(self, limit: int = 100) -> list[Candidate]:
        """Decided candidates, latest decision first."""
        return await self._list(self.index_keys[1], limit)

    async def decide(
        self, candidate_id: str, label: str, editor: str, *, intent: str = "", entry_id: str = ""
    ) -> Candidate:
        """Record an editor's decision on a pending candidate.

        Raises:
            CandidateNotFoundError: No such pending candidate.
            ValueError: An unknown label, or an intent/entry missing for its label.
        """
        if label not in LABELS:
            raise ValueError(f"unknown label {label!r}")
        if label == "intent" and not intent:
            raise ValueError("an intent example needs the intent")
        if label == "kb_question" and not entry_id:
            raise ValueError("a knowledge-base question needs the entry")
        pending, decided = self.index_keys
        if await self.redis.zscore(pending, candidate_id) is None:
            raise CandidateNotFoundError(candidate_id)
        candidate = await self.get(candidate_id)
        if candidate is None:
            raise CandidateNotFoundError(candidate_id)
        now = self._now()
        done = replace(
            candidate,
            label=label,
            intent=intent if label == "intent" else (OUT_OF_SCOPE if label == OUT_OF_SCOPE else ""),
            entry_id=entry_id if label == "kb_question" else candidate.entry_id,
            decided_by=editor,
            decided_at=now.isoformat(),
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.item_key(candidate_id), done.to_json())
            pipe.zrem(pending, candidate_id)
            pipe.zadd(decided, {candidate_id: now.timestamp()})
            await pipe.execute()
        return done

    async def training_examples(self) -> dict[str, list[str]]:
        """Approved examples by intent (``out_of_scope`` included), redacted, de-duplicated."""
        examples: dict[str, list[str]] = {}
        ids = await self.redis.zrange(self.index_keys[1], 0, -1)
        for offset in range(0, len(ids), 500):
            batch = ids[offset : offset + 500]
            for raw in await self.redis.mget([self.item_key(i) for i in batch]):
                if not raw:
                    continue
                candidate = Candidate.from_json(raw)
                if candidate.label in ("intent", OUT_OF_SCOPE) and candidate.intent:
                    text = " ".join(redact(candidate.text).split())
                    if text and text not in examples.setdefault(candidate.intent, []):
                        examples[candidate.intent].append(text)
        return {intent: sorted(texts) for intent, texts in sorted(examples.items())}

    async def detach(self, conversation_id: str) -> int:
        """Forget a conversation whose retention ended; return how many candidates it had.

        Pending candidates go with it. Decided ones stay as training data (already redacted)
        but no longer name the conversation. An erasure deletes them all instead
        (:mod:`bot.residents.rights`).
        """
        candidates = await self.of_conversation(conversation_id)
        pending, _ = self.index_keys
        async with self.redis.pipeline(transaction=True) as pipe:
            for candidate in candidates:
                if candidate.label:
                    kept = replace(candidate, conversation_id="")
                    pipe.set(self.item_key(candidate.id), kept.to_json())
                else:
                    pipe.delete(self.item_key(candidate.id))
                    pipe.zrem(pending, candidate.id)
            pipe.delete(self.conversation_key(conversation_id))
            await pipe.execute()
        return len(candidates)

    async def of_conversation(self, conversation_id: str) -> list[Candidate]:
        """A conversation's candidates (for the resident's export)."""
        ids = sorted(await self.redis.smembers(self.conversation_key(conversation_id)))
        if not ids:
            return []
        raws = await self.redis.mget([self.item_key(i) for i in ids])
        return [Candidate.from_json(raw) for raw in raws if raw]


def training_yaml(examples: dict[str, list[str]]) -> str:
    """Rasa NLU training data (``data/nlu/reviewed.yml``) for approved examples by intent."""
    nlu = [
        {"intent": intent, "examples": "".join(f"- {text}\n" for text in texts)}
        for intent, texts in sorted(examples.items())
        if texts
    ]
    header = (
        "# Examples editors approved in the review queue (/review/). Written by\n"
        "# python -m bot.train before training, from Redis: do not edit by hand.\n"
    )
    body = {"version": "3.1", "nlu": [{**i, "examples": _Block(i["examples"])} for i in nlu]}
    return header + yaml.dump(body, Dumper=_Dumper, sort_keys=False, allow_unicode=True)


class _Block(str):
    """A string written as a YAML literal block (Rasa's ``examples: |``)."""


class _Dumper(yaml.SafeDumper):
    pass


def _block(dumper: yaml.SafeDumper, data: _Block) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")


_Dumper.add_representer(_Block, _block)
