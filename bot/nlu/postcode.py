"""Rasa component: UK postcodes and street addresses as entities.

Entities: ``postcode`` (normalised, e.g. ``SW1A 1AA``), ``malformed_postcode`` (the raw text of
something postcode-shaped that is not a valid postcode, so the bot can ask again) and
``address`` (e.g. ``Flat 3, 45 Mill Lane``). Rule-based; nothing to train.
"""

from __future__ import annotations

from typing import Any

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

from bot.nlu.addresses import find_addresses
from bot.nlu.postcodes import find_postcodes

__all__ = ["ADDRESS", "MALFORMED_POSTCODE", "POSTCODE", "PostcodeEntityExtractor", "entities_in"]

POSTCODE = "postcode"
MALFORMED_POSTCODE = "malformed_postcode"
ADDRESS = "address"


def _entity(kind: str, value: str, start: int, end: int) -> dict[str, Any]:
    return {
        ENTITY_ATTRIBUTE_TYPE: kind,
        ENTITY_ATTRIBUTE_VALUE: value,
        ENTITY_ATTRIBUTE_START: start,
        ENTITY_ATTRIBUTE_END: end,
        ENTITY_ATTRIBUTE_CONFIDENCE: 1.0,
    }


def entities_in(text: str) -> list[dict[str, Any]]:
    """Return the postcode, malformed-postcode and address entities of ``text``, in order."""
    found = [
        _entity(POSTCODE, match.postcode, match.start, match.end)
        if match.postcode
        else _entity(MALFORMED_POSTCODE, match.raw, match.start, match.end)
        for match in find_postcodes(text)
    ]
    found += [_entity(ADDRESS, match.raw, match.start, match.end) for match in find_addresses(text)]
    return sorted(found, key=lambda entity: int(entity[ENTITY_ATTRIBUTE_START]))


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class PostcodeEntityExtractor(GraphComponent, EntityExtractorMixin):
    """Adds ``postcode``, ``malformed_postcode`` and ``address`` entities to each message."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """No options."""
        return {}

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> PostcodeEntityExtractor:
        """Create the extractor."""
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        """Append this extractor's entities to each message's entities."""
        for message in messages:
            text = message.get(TEXT)
            if not text:
                continue
            found = self.add_extractor_name(entities_in(str(text)))
            message.set(ENTITIES, [*message.get(ENTITIES, []), *found], add_to_output=True)
        return messages
