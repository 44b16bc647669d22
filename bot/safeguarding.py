"""A safety net that sends messages about risk to a person, whatever the classifier says.

The intent classifier is good but not perfect; a resident who writes "he hits me when he's
drunk" must never get a routine answer. :class:`SafeguardingGuard` runs after the classifier
and forces the ``safeguarding`` intent when a message matches a known risk phrase. The phrases
are deliberately broad: a false alarm costs an agent a minute, a miss can cost far more.
"""

from __future__ import annotations

import re
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

__all__ = ["SAFEGUARDING_INTENT", "SafeguardingGuard", "risk_phrase"]

SAFEGUARDING_INTENT = "safeguarding"

_RISK_PATTERNS = [
    r"\b(kill|hurt|harm|cut)(ing)? (my ?self|myself)\b",
    r"\bsuicid\w*",
    r"\bend (it all|my life)\b",
    r"\b(don'?t|do not) want to (live|be alive|be here)\b",
    r"\bself[- ]?harm\w*",
    r"\boverdos\w*",
    r"\b(hits?|hitting|beats?|beating|punch\w*|kick\w*|chok\w*|strangl\w*)"
    r" (me|her|him|them|us|the (kids?|children|baby))\b",
    r"\bdomestic (abuse|violence)\b",
    r"\b(abus\w*|neglect\w*|groom\w*)\b",
    r"\b(scared|afraid|frightened|terrified) (of|to go home|for my life)\b",
    r"\b(kids?|children|child|baby|toddler)\b.{0,40}\b(left|home) alone\b",
    r"\b(sleeping|sleep) (rough|on the streets?|in (my|the) car|outside)\b",
    r"\b(nowhere|no where|no place|nowhere safe) to (sleep|stay|go|live)\b",
    r"\bhomeless (tonight|today|now)\b",
    r"\b(evicted|kicked out|thrown out) (today|tonight|now)\b",
    r"\bin (immediate )?danger\b",
    r"\bnot safe at home\b",
]
_RISK = re.compile("|".join(f"(?:{pattern})" for pattern in _RISK_PATTERNS), re.IGNORECASE)


def risk_phrase(text: str) -> str | None:
    """Return the first risk phrase found in ``text``, or None."""
    match = _RISK.search(text)
    return match.group(0) if match else None


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class SafeguardingGuard(GraphComponent):
    """Overrides the classified intent with ``safeguarding`` when a risk phrase appears.

    Place it after the intent classifier in ``config.yml``. The classifier's ranking is kept
    in ``intent_ranking`` so agents still see what the model thought.
    """

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SafeguardingGuard:
        """Create the component (it has nothing to train or load)."""
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        """Force the safeguarding intent on messages that mention a risk."""
        for message in messages:
            text = message.get(TEXT) or ""
            phrase = risk_phrase(text)
            intent = message.get(INTENT) or {}
            if phrase is None or intent.get(INTENT_NAME_KEY) == SAFEGUARDING_INTENT:
                continue
            message.set(
                INTENT,
                {INTENT_NAME_KEY: SAFEGUARDING_INTENT, "confidence": 1.0},
                add_to_output=True,
            )
            ranking = message.get(INTENT_RANKING_KEY) or []
            message.set(
                INTENT_RANKING_KEY,
                [{INTENT_NAME_KEY: SAFEGUARDING_INTENT, "confidence": 1.0}, *ranking],
                add_to_output=True,
            )
        return messages
