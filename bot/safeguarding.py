"""A safety net that sends messages about risk to a person, whatever the classifier says.

The intent classifier is good but not perfect; a resident who writes "he hits me when he's
drunk" must never get a routine answer. :class:`SafeguardingGuard` runs after the classifier
and forces the ``safeguarding`` intent when a message matches a known risk phrase. The phrases
are deliberately broad: a false alarm costs an agent a minute, a miss can cost far more.

Residents may write in Welsh (``docs/welsh.md``), so Welsh phrases are recognised too, in the
mutated forms a word takes after "fy", "ei", "yn" and so on (soft "ladd", nasal "fy nharo",
aspirate "ei cham-drin"). Messages are matched without accents and with typographic
apostrophes made plain, as phones write them. The Welsh phrases have not yet been reviewed by
a native speaker.
"""

from __future__ import annotations

import re
import unicodedata
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

# Welsh verbs of harm with their mutated forms (radical, soft, nasal, aspirate).
_WELSH_HARM = (
    r"(taro|daro|nharo|tharo|curo|guro|nghuro|churo|cicio|gicio|nghicio|chicio"
    r"|tagu|dagu|nhagu|thagu|bwrw|fwrw|mwrw|brifo|frifo|mrifo|bygwth|fygwth|mygwth)"
)
_WELSH_CHILD = r"(plentyn|blentyn|mhlentyn|phlentyn|plant|blant|mhlant|phlant|babi|fabi|mabi)"
_WELSH_RISK_PATTERNS = [
    # kill myself / himself; suicide; self-harm; wanting to die; overdose
    r"\bl?ladd (fy|ei|eu) hun(an|ain)?\b",
    r"\bhunan-?ladd\w*",
    r"\bhunan-?niw\w*",
    r"\b(niweidio|anafu|brifo|frifo|torri|dorri) (fy|ei) hun(an)?\b",
    r"\b(eisiau|eisie|isio|isie|moyn) marw\b",
    r"\bd?dim (eisiau|eisie|isio|isie|moyn) (byw|bod yma|bod yn fyw)\b",
    r"\bgorddos\w*",
    # someone hurting me or us ("fy nharo", "ein taro"), or a named person or child
    r"\b(fy|'m) (nharo|nghuro|nghicio|nhagu|mwrw|mrifo|mygwth)\b",
    r"\bein (taro|curo|cicio|tagu|bwrw|brifo|bygwth)\b",
    rf"\b{_WELSH_HARM}( (fi|fo|fe|e|hi|nhw|ni)\b|( y|'r) {_WELSH_CHILD}\b)",
    r"\bymosod\w* ar(na|naf|non|no|ni|nyn)\b",
    # abuse in every mutation (cam-drin, gam-drin, cham-drin, ngham-drin), neglect, violence
    r"\b(c|g|ch|ngh)am-?drin\w*",
    r"\besgeul(uso|uswyd|usir|ustod)\b",
    r"\btrais\b",
    r"\b(t|d|nh|th)reisio\b",
    # a child left alone; in danger; not feeling safe; afraid of someone or of going home
    rf"\b{_WELSH_CHILD}\b.{{0,40}}\bar (ei|eu) (ben|phen|pen|pennau) (ei|eu) hun(ain)?\b",
    r"\bmewn perygl\b",
    r"\bd?dim yn teimlo'?n (ddiogel|saff)\b",
    rf"\b(i|fi|ni|{_WELSH_CHILD}) d?dim yn (ddiogel|saff)\b",
    # ("ofn fy mod" is "afraid that I am", not afraid of someone)
    r"\bofn\w* (am fy (mywyd|bywyd)|mynd adre\w*|fy (?!mod\b)\w+|fe|fo|hi|e|nhw)\b",
    # nowhere to sleep, sleeping rough, homeless or thrown out today
    r"\b(unman|nunlle|nunlla)( diogel)? i (gysgu|aros|fyw)\b",
    r"\b(c|g)ysgu (allan|tu allan|ar y stryd\w*|ar strydoedd|yn (y|fy) (car|nghar))\b",
    r"\bd?digartref (heno|heddiw|nawr|rwan)\b",
    r"\b(taflu|daflu|nhaflu|troi|droi|nhroi|cicio|gicio|nghicio) (fi |ni )?allan"
    r" (heno|heddiw|nawr|rwan)\b",
]
_RISK = re.compile(
    "|".join(f"(?:{pattern})" for pattern in [*_RISK_PATTERNS, *_WELSH_RISK_PATTERNS]),
    re.IGNORECASE,
)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


def _plain(text: str) -> str:
    """``text`` without accents (ŵ, ŷ, â) and with plain apostrophes, as the patterns are."""
    decomposed = unicodedata.normalize("NFD", text.translate(_APOSTROPHES))
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def risk_phrase(text: str) -> str | None:
    """Return the first risk phrase found in ``text`` (without accents), or None."""
    match = _RISK.search(_plain(text))
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
