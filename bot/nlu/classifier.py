"""Rasa component: intent classification with an out-of-scope decision.

The classifier is multinomial logistic regression on the sentence embeddings. Whether to trust
its answer is decided on a score that blends the winning probability with how close the message
is to the training examples of the winning intent (mean cosine of its ``k`` nearest): a message
unlike anything seen in training is doubted even when the regression is confident. Below
``threshold``, or when the winner is the trained ``out_of_scope`` intent, the message gets
``nlu_fallback`` (so the ``nlu_fallback`` rules fire), with the regression's ranking kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.embedder import FloatArray
from bot.nlu.featurizer import SentenceEmbeddingFeaturizer, sentence_embedding

__all__ = ["FALLBACK_INTENT", "OUT_OF_SCOPE_INTENT", "CouncilIntentClassifier", "IntentModel"]

FALLBACK_INTENT = "nlu_fallback"
OUT_OF_SCOPE_INTENT = "out_of_scope"
_RANKING_LENGTH = 10


@dataclass
class IntentModel:
    """The fitted weights and the training embeddings used for the closeness score."""

    classes: list[str]
    coef: FloatArray  # (n_classes, dim)
    intercept: FloatArray  # (n_classes,)
    examples: FloatArray  # (n_examples, dim), normalised
    example_labels: npt.NDArray[np.int64]  # (n_examples,) class index of each example

    @classmethod
    def fit(cls, vectors: FloatArray, labels: list[str], c: float) -> IntentModel:
        """Fit the regression on normalised ``vectors``."""
        from sklearn.linear_model import LogisticRegression

        classes = sorted(set(labels))
        index = {name: i for i, name in enumerate(classes)}
        y = np.array([index[label] for label in labels])
        regression = LogisticRegression(C=c, max_iter=2000)
        regression.fit(vectors, y)
        coef, intercept = regression.coef_, regression.intercept_
        if len(classes) == 2:  # sklearn keeps one row for two classes
            coef = np.vstack([-coef[0], coef[0]])
            intercept = np.array([-intercept[0], intercept[0]])
        return cls(classes, coef.astype(np.float32), intercept.astype(np.float32), vectors, y)

    def probabilities(self, vectors: FloatArray) -> FloatArray:
        """Return class probabilities, one row per vector."""
        logits = vectors @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        result: FloatArray = exp / exp.sum(axis=1, keepdims=True)
        return result

    def closeness(
        self, vectors: FloatArray, predicted: npt.NDArray[np.int64], k: int
    ) -> FloatArray:
        """Mean cosine of each vector to its ``k`` nearest examples of its predicted class."""
        similarities = vectors @ self.examples.T
        result = np.empty(len(vectors), dtype=np.float32)
        for row, label in enumerate(predicted):
            same = similarities[row, self.example_labels == label]
            top = np.sort(same)[-k:] if same.size else np.zeros(1)
            result[row] = float(top.mean())
        return result


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER],
    is_trainable=True,
)
class CouncilIntentClassifier(GraphComponent, IntentClassifier):
    """Intent classifier with an out-of-scope decision (see the module docstring).

    Config:
        C: Inverse regularisation strength of the regression.
        k: Neighbours in the closeness score.
        closeness_weight: Weight of the closeness in the score (the rest is the probability).
        threshold: Below this score the intent is ``nlu_fallback``.
    """

    @staticmethod
    def required_components() -> list[type]:
        """Needs the sentence embeddings."""
        return [SentenceEmbeddingFeaturizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Return the defaults, chosen on the demo data and CLINC150 (see docs/nlu.md)."""
        return {"C": 20.0, "k": 5, "closeness_weight": 0.5, "threshold": 0.55}

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: IntentModel | None = None,
    ) -> None:
        self.config = config
        self._storage = model_storage
        self._resource = resource
        self.model = model

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> CouncilIntentClassifier:
        """Create an untrained classifier."""
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Fit on every intent example that has an embedding, and persist."""
        vectors, labels = [], []
        for message in training_data.intent_examples:
            vector = sentence_embedding(message)
            if vector is not None:
                vectors.append(vector)
                labels.append(str(message.get(INTENT)))
        if len(set(labels)) < 2:
            # Nothing to tell apart: stay untrained, every message becomes nlu_fallback.
            return self._resource
        self.model = IntentModel.fit(np.vstack(vectors), labels, float(self.config["C"]))
        self._persist()
        return self._resource

    def _persist(self) -> None:
        assert self.model is not None
        with self._storage.write_to(self._resource) as folder:
            np.savez_compressed(
                folder / "model.npz",
                coef=self.model.coef,
                intercept=self.model.intercept,
                examples=self.model.examples,
                example_labels=self.model.example_labels,
            )
            (folder / "classes.json").write_text(json.dumps(self.model.classes))

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> CouncilIntentClassifier:
        """Load the persisted weights (plain arrays: nothing is unpickled)."""
        try:
            with model_storage.read_from(resource) as folder:
                arrays = np.load(folder / "model.npz", allow_pickle=False)
                classes = json.loads((folder / "classes.json").read_text())
                model = IntentModel(
                    classes,
                    arrays["coef"],
                    arrays["intercept"],
                    arrays["examples"],
                    arrays["example_labels"],
                )
        except ValueError:  # nothing persisted: trained on fewer than two intents
            model = None
        return cls(config, model_storage, resource, model)

    def scores(self, vectors: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Return (probabilities, trust score) for normalised ``vectors``."""
        assert self.model is not None
        probabilities = self.model.probabilities(vectors)
        predicted = probabilities.argmax(axis=1)
        closeness = self.model.closeness(vectors, predicted, int(self.config["k"]))
        weight = float(self.config["closeness_weight"])
        trust = (1 - weight) * probabilities.max(axis=1) + weight * closeness
        return probabilities, trust

    def process(self, messages: list[Message]) -> list[Message]:
        """Set ``intent`` and ``intent_ranking`` on each message."""
        for message in messages:
            vector = sentence_embedding(message)
            if self.model is None or vector is None:
                message.set(
                    INTENT,
                    {INTENT_NAME_KEY: FALLBACK_INTENT, "confidence": 1.0},
                    add_to_output=True,
                )
                message.set(INTENT_RANKING_KEY, [], add_to_output=True)
                continue
            probabilities, trust = self.scores(vector[np.newaxis, :])
            order = np.argsort(-probabilities[0])[:_RANKING_LENGTH]
            ranking = [
                {INTENT_NAME_KEY: self.model.classes[i], "confidence": float(probabilities[0, i])}
                for i in order
            ]
            top = ranking[0][INTENT_NAME_KEY]
            if top == OUT_OF_SCOPE_INTENT or trust[0] < float(self.config["threshold"]):
                intent = {INTENT_NAME_KEY: FALLBACK_INTENT, "confidence": float(1 - trust[0])}
                ranking.insert(0, dict(intent))
            else:
                intent = {
                    INTENT_NAME_KEY: ranking[0][INTENT_NAME_KEY],
                    "confidence": float(trust[0]),
                }
            message.set(INTENT, intent, add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
