"""Rasa component: the language of each message (Welsh or English), for replies in that language.

Identification is offline, by `Lingua <https://github.com/pemistahl/lingua-py>`_
(``lingua-language-detector``) restricted to English and Welsh, built once per process.
A message only says which language it is in when that is clear: the two languages' scores
must differ by the detector's minimum relative distance, and a short message (fewer than
three words of letters: "ok", "AV1 2BX", "ie") needs a confidence of 0.9 ("diolch" has it).
Anything less clear (emoji, postcodes, "helo", a mix of Welsh and English) says nothing, so
the conversation keeps the language it had.

The component writes ``language`` (``"cy"``, ``"en"`` or None) into the parse data, and, when
it is clear, a ``language`` entity; the domain's slot ``language`` is filled from that entity
(``responses/language.yml``), so Rasa remembers the language per conversation and a message
that says nothing leaves the slot as it was. See ``docs/welsh.md``.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from lingua import Language, LanguageDetector, LanguageDetectorBuilder
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_CONFIDENCE,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGE",
    "LANGUAGES",
    "LanguageIdentifier",
    "LanguageTagger",
    "identifier",
    "language_of",
]

LANGUAGE = "language"
"""The parse-data key, entity and slot that carry a message's language."""

LANGUAGES = ("en", "cy")
"""The languages residents are answered in (ISO 639-1)."""

DEFAULT_LANGUAGE = "en"
"""The language of a conversation until a message is clearly in another."""

_CODES = {Language.ENGLISH: "en", Language.WELSH: "cy"}
# Words of letters only (Welsh has accented vowels and apostrophes: "ŵyr", "ma'r").
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*")


class LanguageIdentifier:
    """Says whether a text is clearly Welsh or English.

    Args:
        minimum_relative_distance: How far apart the two languages' scores must be (Lingua's
            setting, 0 to 0.99): below it the text is not clearly either.
        short_words: Texts with fewer words of letters than this are short.
        short_confidence: The confidence a short text needs.
    """

    def __init__(
        self,
        minimum_relative_distance: float = 0.25,
        short_words: int = 3,
        short_confidence: float = 0.9,
    ) -> None:
        self.short_words = short_words
        self.short_confidence = short_confidence
        self._detector: LanguageDetector = (
            LanguageDetectorBuilder.from_languages(*_CODES)
            .with_minimum_relative_distance(minimum_relative_distance)
            .build()
        )

    def identify(self, text: str) -> str | None:
        """``"cy"`` or ``"en"`` when ``text`` is clearly in that language, else None."""
        words = _WORD.findall(text)
        if not words:
            return None
        letters = " ".join(words)
        found = self._detector.detect_language_of(letters)
        if found is None:
            return None
        if len(words) < self.short_words:
            confidence = self._detector.compute_language_confidence(letters, found)
            if confidence < self.short_confidence:
                return None
        return _CODES[found]


_lock = threading.Lock()
_shared: LanguageIdentifier | None = None


def identifier() -> LanguageIdentifier:
    """This process' identifier with the default settings, built on first use."""
    global _shared  # built once per process: Lingua's models load lazily and are shared
    with _lock:
        if _shared is None:
            _shared = LanguageIdentifier()
        return _shared


def language_of(value: Any) -> str:
    """A conversation's language from a slot value: ``"cy"`` or ``"en"`` (anything else)."""
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class LanguageTagger(GraphComponent, EntityExtractorMixin):
    """Writes each message's language into its parse data and, when clear, as an entity.

    Config (``config.yml``): ``minimum_relative_distance`` (0.25), ``short_words`` (3),
    ``short_confidence`` (0.9): see :class:`LanguageIdentifier`.
    """

    def __init__(self, identifier: LanguageIdentifier) -> None:
        self.identifier = identifier

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """The identifier's settings."""
        return {"minimum_relative_distance": 0.25, "short_words": 3, "short_confidence": 0.9}

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LanguageTagger:
        """Create the component with the configured identifier."""
        defaults = cls.get_default_config()
        settings = {name: config.get(name, value) for name, value in defaults.items()}
        if settings == defaults:
            return cls(identifier())
        return cls(
            LanguageIdentifier(
                float(settings["minimum_relative_distance"]),
                int(settings["short_words"]),
                float(settings["short_confidence"]),
            )
        )

    def process(self, messages: list[Message]) -> list[Message]:
        """Set ``language`` on each message, and a ``language`` entity when it is clear."""
        for message in messages:
            text = str(message.get(TEXT) or "")
            language = self.identifier.identify(text)
            message.set(LANGUAGE, language, add_to_output=True)
            if language is None:
                continue
            entity = {
                ENTITY_ATTRIBUTE_TYPE: LANGUAGE,
                ENTITY_ATTRIBUTE_VALUE: language,
                ENTITY_ATTRIBUTE_START: 0,
                ENTITY_ATTRIBUTE_END: len(text),
                ENTITY_ATTRIBUTE_CONFIDENCE: 1.0,
            }
            found = self.add_extractor_name([entity])
            message.set(ENTITIES, [*message.get(ENTITIES, []), *found], add_to_output=True)
        return messages
