"""The questions the bot could not answer, kept for reports without residents' personal data.

When a case is opened because the bot did not understand (``low_confidence``) or the question
was out of scope (``out_of_scope``), the message that caused it is redacted
(:func:`bot.redaction.redact`) and stored apart from the case, under
``{ns}:stats:question:{case_id}``, for as long as reports look back. The supervisors' report
reads these; the case itself keeps the full text for the agent, and ends with the case's own
retention. Cases from before this store existed are redacted when read.
"""

from __future__ import annotations

import redis.asyncio

from bot.handoff.record import HandoffRecord
from bot.keys import key
from bot.redaction import redact

__all__ = ["RETENTION_SECONDS", "UNANSWERED_REASONS", "UnansweredQuestions"]

UNANSWERED_REASONS = frozenset({"low_confidence", "out_of_scope"})
# reports look back at most 366 days
RETENTION_SECONDS = 400 * 24 * 3600


def _last_resident_text(record: HandoffRecord) -> str:
    said = [m["text"] for m in record.transcript if m.get("role") == "resident" and m.get("text")]
    return said[-1] if said else ""


class UnansweredQuestions:
    """Redacted unanswered questions, one per case.

    Args:
        redis: Asyncio client with ``decode_responses=True``.
        namespace: Key namespace.
    """

    def __init__(self, redis: redis.asyncio.Redis, namespace: str = "cr") -> None:
        self._redis = redis
        self._ns = namespace

    def _key(self, case_id: str) -> str:
        return key(self._ns, "stats", "question", case_id)

    async def record(self, record: HandoffRecord, text: str) -> bool:
        """Keep the redacted ``text`` for an unanswered case; the first one wins.

        Returns whether it was stored (False for other reasons, empty text or a repeat).
        """
        if record.reason not in UNANSWERED_REASONS or not text.strip():
            return False
        stored = await self._redis.set(
            self._key(record.case_id), redact(text), nx=True, ex=RETENTION_SECONDS
        )
        return bool(stored)

    async def questions(self, records: list[HandoffRecord]) -> list[str]:
        """Return the redacted question of each unanswered case among ``records``, in order.

        Cases with nothing stored (opened before this store existed) are redacted from
        their transcript now.
        """
        unanswered = [r for r in records if r.reason in UNANSWERED_REASONS]
        if not unanswered:
            return []
        stored = await self._redis.mget([self._key(r.case_id) for r in unanswered])
        texts = [
            text if text is not None else redact(_last_resident_text(record))
            for record, text in zip(unanswered, stored, strict=True)
        ]
        return [text for text in texts if text.strip()]
