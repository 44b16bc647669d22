"""The regression gate: what an edit would change before residents see it.

Before a publish, the test conversations (``responses/knowledge/gate/*.yml``, shipped with the
content and found from the package, whatever the working directory) and every entry's
example questions are answered by the knowledge base as it is and as it would be after the
edit (selection only, in process). Questions whose answer changes are shown to the editor; a
test conversation whose expected entry or text no longer comes back blocks the publish unless an
admin overrides.

Conversation file format::

    conversations:
      - name: single person discount
        channel: whatsapp            # optional, default "default"
        turns:
          - user: I live on my own, do I pay less council tax?
            intent: council_tax_discount   # optional: the classifier's answer, if known
            confidence: 0.9                # optional, default 1.0 when intent is given
            expect_entry: council-tax-single-person-discount   # or "none": must hand off
            expect_text: 25%               # optional: text the answer must contain
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bot.errors import ConfigError
from bot.knowledge.content import CONTENT_DIR
from bot.knowledge.selector import Index

__all__ = [
    "DEFAULT_CONVERSATIONS",
    "NO_ENTRY",
    "Change",
    "Conversation",
    "GateReport",
    "Turn",
    "load_conversations",
    "run_gate",
]

NO_ENTRY = "none"

DEFAULT_CONVERSATIONS = CONTENT_DIR / "gate"
"""The gate's test conversations, next to the knowledge-base content they check."""


@dataclass(frozen=True)
class Turn:
    """One resident message of a test conversation and the answer it must get.

    Attributes:
        user: What the resident writes.
        expect_entry: The entry that must answer, or ``"none"`` (must not answer: handoff).
        intent: The classified intent, when the test pins it.
        confidence: The intent's confidence.
        expect_text: Text the answer (in the conversation's channel) must contain.
    """

    user: str
    expect_entry: str
    intent: str | None = None
    confidence: float = 0.0
    expect_text: str = ""


@dataclass(frozen=True)
class Conversation:
    """A test conversation.

    Attributes:
        name: What it checks.
        source: The file it came from.
        channel: The channel the answers are for.
        turns: Its turns.
    """

    name: str
    source: str
    channel: str
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class Change:
    """A question whose answer differs after the edit.

    Attributes:
        question: The message.
        origin: ``conversation: <name>`` or ``example of <entry id>``.
        before: Entry id answering now (``"none"`` for a handoff).
        after: Entry id answering after the edit.
    """

    question: str
    origin: str
    before: str
    after: str


@dataclass(frozen=True)
class GateReport:
    """What the edit changes.

    Attributes:
        changes: Every question whose answer changes.
        broken: One line per test-conversation turn that fails after the edit.
        checked: How many questions were answered.
    """

    changes: tuple[Change, ...]
    broken: tuple[str, ...]
    checked: int

    @property
    def ok(self) -> bool:
        """Whether no test conversation breaks."""
        return not self.broken


def _turn(path: Path, where: str, data: Any) -> Turn:
    if not isinstance(data, dict) or not str(data.get("user") or "").strip():
        raise ConfigError(str(path), where + ".user", "each turn needs the resident's text")
    if not data.get("expect_entry"):
        raise ConfigError(str(path), where + ".expect_entry", "name the expected entry or none")
    intent = data.get("intent")
    return Turn(
        user=str(data["user"]),
        expect_entry=str(data["expect_entry"]),
        intent=str(intent) if intent else None,
        confidence=float(data.get("confidence", 1.0 if intent else 0.0)),
        expect_text=str(data.get("expect_text") or ""),
    )


def load_conversations(folder: Path = DEFAULT_CONVERSATIONS) -> list[Conversation]:
    """Read every ``*.yml`` test conversation under ``folder`` (default: the shipped ones).

    Raises:
        ConfigError: The folder is missing (the gate must not silently check nothing), or a
            file is not valid YAML or not in the documented format.
    """
    if not folder.is_dir():
        raise ConfigError(str(folder), "", "test conversations folder not found")
    conversations = []
    for path in sorted(folder.glob("*.yml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(str(path), "", f"not valid YAML: {exc}") from exc
        items = data.get("conversations") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ConfigError(str(path), "conversations", "expected a list of conversations")
        for n, item in enumerate(items):
            where = f"conversations[{n}]"
            if not isinstance(item, dict) or not isinstance(item.get("turns"), list):
                raise ConfigError(str(path), where + ".turns", "expected a list of turns")
            turns = tuple(
                _turn(path, f"{where}.turns[{i}]", t) for i, t in enumerate(item["turns"])
            )
            conversations.append(
                Conversation(
                    name=str(item.get("name") or where),
                    source=str(path),
                    channel=str(item.get("channel") or "default"),
                    turns=turns,
                )
            )
    return conversations


def run_gate(
    before: Index, after: Index, conversations: list[Conversation], now: datetime
) -> GateReport:
    """Answer every test turn and example question with both indexes and compare.

    The messages are embedded once (the encoder's cache makes repeats cheap) and scored
    against both indexes in matrix products.
    """
    questions: list[tuple[str, str, str | None, float, Turn | None, str]] = []
    for conversation in conversations:
        for turn in conversation.turns:
            origin = f"conversation: {conversation.name}"
            questions.append(
                (turn.user, origin, turn.intent, turn.confidence, turn, conversation.channel)
            )
    for entry in {e.id: e for e in [*before.entries, *after.entries]}.values():
        for question in entry.questions:
            # example questions test the similarity path: no intent pins the topic
            questions.append((question, f"example of {entry.id}", None, 0.0, None, "default"))
    texts = [q[0] for q in questions]
    vectors = before.encoder.encode(texts) if texts else np.zeros((0, 1), np.float32)
    asks = [(q[2], q[3]) for q in questions]
    olds, news = before.select_many(asks, vectors, now), after.select_many(asks, vectors, now)
    changes: list[Change] = []
    broken: list[str] = []
    for (text, origin, _, _, expected, channel), old, new in zip(
        questions, olds, news, strict=True
    ):
        old_id = old.entry.id if old else NO_ENTRY
        new_id = new.entry.id if new else NO_ENTRY
        if old_id != new_id:
            changes.append(Change(text, origin, old_id, new_id))
        if expected is None:
            continue
        if new_id != expected.expect_entry:
            broken.append(f"{origin}: {text!r} expects {expected.expect_entry}, would get {new_id}")
        elif (
            new
            and expected.expect_text
            and expected.expect_text not in new.entry.answer_for(channel)
        ):
            broken.append(f"{origin}: {text!r} answer no longer contains {expected.expect_text!r}")
    return GateReport(tuple(changes), tuple(broken), len(questions))
