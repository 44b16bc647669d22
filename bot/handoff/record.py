"""The handoff record: everything an agent needs to pick up a conversation.

Built from the Rasa tracker's events (in the dict form rasa-sdk gives actions), so the agent sees
the whole transcript with the bot's replies, the intents and confidences that led here, the
entities found, the reason and the priority.

The teams (:func:`teams`; ``TEAMS`` still works, read when asked for) and the routing of topics
to teams are the council's, from its profile (:mod:`bot.profile`). A conversation in Welsh
(``language`` ``"cy"``) goes to a Welsh-speaking team (``docs/welsh.md``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.handoff.attachments import resident_text
from bot.profile import CouncilProfile
from bot.profile import current as council_profile

__all__ = [
    "PRIORITIES",
    "HandoffRecord",
    "build_record",
    "priority_for",
    "split_conversation_id",
    "team_for",
    "teams",
]

PRIORITIES = ("P1", "P2", "P3")
_PRIORITY_BY_REASON = {
    "safeguarding": "P1",
    "complaint": "P2",
    "asked_for_person": "P2",
    "low_confidence": "P3",
    "out_of_scope": "P3",
}
_INTENT_HISTORY = 5


def teams() -> tuple[str, ...]:
    """Every team a case can be routed or reassigned to (the profile's ``teams``)."""
    return council_profile().team_ids


def __getattr__(name: str) -> Any:
    # The former constant TEAMS, now the council's: read from the profile when asked for.
    if name == "TEAMS":
        return teams()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def priority_for(reason: str) -> str:
    """Return the queue priority for a handoff reason (P1 is the most urgent)."""
    return _PRIORITY_BY_REASON.get(reason, "P3")


def team_for(
    topic: str, reason: str, profile: CouncilProfile | None = None, *, language: str = "en"
) -> str:
    """Return the team that handles a topic (the profile's ``routing``).

    Safeguarding cases always go to the profile's safeguarding team; other conversations in
    Welsh (``language="cy"``) to a Welsh-speaking team when the profile has one.
    """
    routing = (profile or council_profile()).routing
    return routing.team_for(topic, reason, welsh=language == "cy")


def split_conversation_id(conversation_id: str, channel: str) -> tuple[str, str]:
    """Return (account, sender) of ``"{channel}:{account}:{sender}"``; REST ids have no account."""
    prefix = f"{channel}:"
    if conversation_id.startswith(prefix):
        account, _, sender = conversation_id[len(prefix) :].partition(":")
        if sender:
            return account, sender
    return "", conversation_id


def _iso(timestamp: float | None, default: datetime) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC) if timestamp else default
    return moment.isoformat()


@dataclass
class HandoffRecord:
    """One conversation handed to people (see docs/architecture.md, "Handoff")."""

    conversation_id: str
    channel: str
    account: str
    sender: str
    reason: str
    topic: str
    priority: str
    team: str
    created_at: str
    display_name: str = ""
    transcript: list[dict[str, Any]] = field(default_factory=list)
    intents: list[dict[str, Any]] = field(default_factory=list)
    entities: dict[str, list[str]] = field(default_factory=dict)
    window: dict[str, Any] | None = None
    status: str = "open"
    language: str = "en"
    case_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    def to_json(self) -> str:
        """Serialise to JSON."""
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> HandoffRecord:
        """Read a record written by :meth:`to_json`."""
        return cls(**json.loads(text))


def build_record(
    conversation_id: str,
    events: list[dict[str, Any]],
    *,
    reason: str,
    topic: str,
    channel: str,
    account: str,
    sender: str,
    display_name: str = "",
    window: dict[str, Any] | None = None,
    now: datetime | None = None,
    language: str = "en",
) -> HandoffRecord:
    """Build the record from a tracker's events.

    Args:
        conversation_id: Rasa's sender id.
        events: The tracker's events as dicts (``tracker.events`` in rasa-sdk).
        reason: ``asked_for_person``, ``complaint``, ``safeguarding``, ``low_confidence`` or
            ``out_of_scope``.
        topic: The intent the handoff is about.
        channel: The input channel's name.
        account: The council account the resident wrote to.
        sender: The resident's id on the channel.
        display_name: The resident's name on the channel, if known.
        window: The channel's messaging-window state, if the channel has one.
        now: The time of the handoff.
        language: The conversation's language (``"en"``, ``"cy"``): routes Welsh to a
            Welsh-speaking team, and agents see it.
    """
    now = now or datetime.now(UTC)
    transcript: list[dict[str, Any]] = []
    intents: list[dict[str, Any]] = []
    entities: dict[str, list[str]] = {}
    for event in events:
        kind = event.get("event")
        at = _iso(event.get("timestamp"), now)
        if kind == "user":
            transcript.append({"role": "resident", "text": resident_text(event), "at": at})
            parse = event.get("parse_data") or {}
            intent = parse.get("intent") or {}
            intents.append(
                {
                    "text": event.get("text") or "",
                    "name": intent.get("name"),
                    "confidence": intent.get("confidence"),
                    "ranking": (parse.get("intent_ranking") or [])[:3],
                }
            )
            for entity in parse.get("entities") or []:
                values = entities.setdefault(str(entity.get("entity")), [])
                if entity.get("value") not in values:
                    values.append(str(entity.get("value")))
        elif kind == "bot" and event.get("text"):
            transcript.append({"role": "bot", "text": event["text"], "at": at})
    return HandoffRecord(
        conversation_id=conversation_id,
        channel=channel,
        account=account,
        sender=sender,
        display_name=display_name,
        reason=reason,
        topic=topic,
        priority=priority_for(reason),
        team=team_for(topic, reason, language=language),
        created_at=now.isoformat(),
        transcript=transcript,
        intents=intents[-_INTENT_HISTORY:],
        entities=entities,
        window=window,
        language=language,
    )
