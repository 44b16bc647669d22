"""Handoff records for tests: one resident's message handed to people, as the product opens it.

:func:`handoff_record` fills what every case needs (conversation id from channel, account and
sender; priority and team from the reason and topic, as ``bot.handoff.record`` routes them; a
one-line transcript) so that a test names only what it is about.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.handoff.record import HandoffRecord, priority_for, team_for

__all__ = ["handoff_record"]


def handoff_record(
    sender: str = "",
    *,
    channel: str = "whatsapp",
    account: str = "441234567890",
    reason: str = "asked_for_person",
    topic: str = "bin_day",
    text: str = "my bin was missed",
    opened: datetime | None = None,
    minutes_ago: float = 0,
    **fields: Any,
) -> HandoffRecord:
    """A case the resident opened with ``text``, ``minutes_ago`` before ``opened`` (default now).

    Args:
        sender: The resident's id on the channel (default: a fresh number, one case each).
        channel: The channel of the conversation.
        account: The council's account on the channel.
        reason: Why it was handed over (sets the priority).
        topic: What it is about (sets the team, with the reason).
        text: What the resident said (the transcript's one line).
        opened: When the case opened, before ``minutes_ago`` is taken off (default: now).
        minutes_ago: How long before ``opened`` it opened.
        **fields: Any other field of :class:`HandoffRecord`, or one to set rather than derive
            (``priority``, ``team``, ``transcript``...).
    """
    sender = sender or f"447{uuid.uuid4().int % 10**9:09d}"
    created = (opened or datetime.now(UTC)) - timedelta(minutes=minutes_ago)
    values: dict[str, Any] = {
        "conversation_id": f"{channel}:{account}:{sender}",
        "channel": channel,
        "account": account,
        "sender": sender,
        "reason": reason,
        "topic": topic,
        "priority": priority_for(reason),
        "team": team_for(topic, reason),
        "created_at": created.isoformat(),
        "transcript": [{"role": "resident", "text": text, "at": created.isoformat()}],
    }
    values.update(fields)
    return HandoffRecord(**values)
